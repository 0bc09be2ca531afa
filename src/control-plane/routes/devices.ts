/**
 * POST /v1/pools/:poolId/devices: register this device (and, on first use, the pool's root public key).
 * GET  /v1/pools/:poolId/devices: the pool's registered devices.
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { authenticate, parseJson, type AuthContext } from '../auth.js'
import type { PoolStore } from '../store/pools.js'

const RegisterBody = z.strictObject({ rootPublicKey: z.string().regex(/^[0-9a-fA-F]{64}$/) })
const PoolParams = z.object({ poolId: z.string() })

export function deviceRoutes (app: FastifyInstance, auth: AuthContext, pools: PoolStore): void {
  app.post('/v1/pools/:poolId/devices', async (request, reply) => {
    const { poolId } = PoolParams.parse(request.params)
    const member = authenticate(auth, request, poolId, 'register')
    parseJson(request, RegisterBody)
    const d = pools.device(poolId, member.nodeId)
    return reply.code(201).send({
      poolId,
      nodeId: member.nodeId,
      name: member.cert.name,
      registeredAt: new Date(d?.registeredAt ?? auth.now()).toISOString(),
      certNotAfter: new Date(member.cert.notAfter).toISOString()
    })
  })

  app.get('/v1/pools/:poolId/devices', async (request) => {
    const { poolId } = PoolParams.parse(request.params)
    authenticate(auth, request, poolId, 'member')
    return {
      poolId,
      devices: pools.devices(poolId).map((d) => ({
        nodeId: d.nodeId,
        name: d.name,
        certSerial: d.certSerial,
        certNotAfter: new Date(d.certNotAfter).toISOString(),
        registeredAt: new Date(d.registeredAt).toISOString(),
        lastSeenAt: new Date(d.lastSeenAt).toISOString()
      }))
    }
  })
}
