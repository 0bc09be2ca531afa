/**
 * PUT /v1/pools/:poolId/revocation { list }: a member hands over the pool's newest root-signed
 * revocation list (base64url of its bytes). The root signature makes it trustworthy whoever
 * uploads it; only a newer sequence replaces the held list. Revoked members leave the HTTP ring
 * at once, and their requests are refused from then on.
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import {
  decodeRevocationList, fromBase64Url, isNewerRevocationList, isRevoked, MAX_REVOCATION_BYTES, type RevocationList,
  StaleRevocationError, VerifyError, verifyRevocationListBytes
} from '../../pool/index.js'
import { authenticate, parseJson, type AuthContext } from '../auth.js'
import { Refusal } from '../refusals.js'
import type { PoolStore } from '../store/pools.js'
import type { RingStore } from '../store/ring.js'

const Body = z.strictObject({ list: z.string().min(1).max(Math.ceil(MAX_REVOCATION_BYTES * 4 / 3) + 4) })
const PoolParams = z.object({ poolId: z.string() })

export function revocationRoutes (app: FastifyInstance, auth: AuthContext, pools: PoolStore, ring: RingStore): void {
  app.put('/v1/pools/:poolId/revocation', async (request) => {
    const m = authenticate(auth, request, PoolParams.parse(request.params).poolId, 'member')
    const bytes = fromBase64Url(parseJson(request, Body).list)
    if (bytes === undefined) throw new Refusal('malformed', 'list: base64url of a revocation list required')
    const pool = pools.pool(m.poolId)
    if (pool === undefined) throw new Refusal('unknown-pool', 'pool is not registered here')
    let incoming: RevocationList
    let newer: boolean
    try {
      incoming = verifyRevocationListBytes(bytes, { poolId: m.poolId, rootPublicKey: pool.rootPublicKey })
      newer = isNewerRevocationList(pool.revocation === undefined ? undefined : decodeRevocationList(pool.revocation), incoming)
    } catch (err) {
      if (err instanceof StaleRevocationError) throw new Refusal('conflict', err.message)
      if (err instanceof VerifyError) throw new Refusal('malformed', err.message)
      throw err
    }
    if (newer) {
      pools.transaction(() => {
        pools.setRevocation(m.poolId, incoming.bytes)
        const revoked = pools.devices(m.poolId).filter((d) => isRevoked(incoming, d.certSerial, d.nodeId)).map((d) => d.nodeId)
        ring.removeMembers(m.poolId, [...new Set([...revoked, ...incoming.nodeIds])])
      })
      request.log.info({ poolId: m.poolId, sequence: incoming.sequence, from: m.nodeId }, 'revocation list updated')
    }
    return { poolId: m.poolId, sequence: incoming.sequence, changed: newer }
  })
}
