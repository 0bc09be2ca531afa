/**
 * The "legacy HTTP-based ring join" for members that cannot use gossip:
 * POST /v1/pools/:poolId/ring/{join,heartbeat,leave}, GET /v1/pools/:poolId/ring.
 * Each answers with the current ring; a member whose heartbeats stop for `memberTtlMs` drops out.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { z } from 'zod'
import type { ShardMode } from '../../ring/assign.js'
import { authenticate, parseJson, type AuthContext } from '../auth.js'
import { Refusal } from '../refusals.js'
import { ringView, type RingView } from '../ring-view.js'
import type { RingStore } from '../store/ring.js'

export interface RingRouteConfig {
  readonly memberTtlMs: number
  readonly shardMode: ShardMode
}

const JoinBody = z.strictObject({
  /** capacity weight for `capacity` shard mode */
  weight: z.number().int().min(1).max(1_000_000).default(1),
  /** libp2p multiaddrs where the member listens, for peers that can reach it */
  addresses: z.array(z.string().min(1).max(256)).max(16).default([])
})
const EmptyBody = z.strictObject({})
const PoolParams = z.object({ poolId: z.string() })

export function ringRoutes (app: FastifyInstance, auth: AuthContext, ring: RingStore, cfg: RingRouteConfig): void {
  const current = (poolId: string): RingView => ring.transaction(() => {
    const now = auth.now()
    return ringView(poolId, ring.liveMembers(poolId, now - cfg.memberTtlMs), cfg.shardMode, (hash) => ring.observeRing(poolId, hash, now), now)
  })
  const member = (request: FastifyRequest) => authenticate(auth, request, PoolParams.parse(request.params).poolId, 'member')

  app.post('/v1/pools/:poolId/ring/join', async (request) => {
    const m = member(request)
    const body = parseJson(request, JoinBody)
    ring.join(m.poolId, m.nodeId, body.weight, body.addresses, auth.now())
    return current(m.poolId)
  })

  app.post('/v1/pools/:poolId/ring/heartbeat', async (request) => {
    const m = member(request)
    parseJson(request, EmptyBody)
    const now = auth.now()
    // a member the TTL dropped must join again (its addresses may have changed meanwhile)
    const live = ring.liveMembers(m.poolId, now - cfg.memberTtlMs).some((r) => r.nodeId === m.nodeId)
    if (!live || !ring.heartbeat(m.poolId, m.nodeId, now)) throw new Refusal('conflict', 'not a ring member (no heartbeat within the TTL?); join again')
    return current(m.poolId)
  })

  app.post('/v1/pools/:poolId/ring/leave', async (request) => {
    const m = member(request)
    parseJson(request, EmptyBody)
    ring.leave(m.poolId, m.nodeId)
    return current(m.poolId)
  })

  app.get('/v1/pools/:poolId/ring', async (request) => current(member(request).poolId))
}
