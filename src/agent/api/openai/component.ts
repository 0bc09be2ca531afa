import type { Logger } from '../../log.js'
import { formatApiAddress, isLoopbackHost } from './address.js'
import type { GatewayComponents, GatewayConfig } from './server.js'
import { ApiKeyRing, checkApiExposure } from './keys.js'

/** The agent's view of the gateway: it starts and stops with the agent. */
export interface Gateway { start: () => Promise<void>, stop: () => Promise<void> }

/**
 * The OpenAI-compatible gateway as an agent component. fastify and the routes load only when it
 * starts, so an agent without --api does not pay for them.
 */
export const openAiGateway = (cfg: GatewayConfig, home: string) => (c: Omit<GatewayComponents, 'keys'> & { log: Logger }): Gateway => {
  let app: Awaited<ReturnType<typeof import('./server.js').buildGateway>> | undefined
  return {
    async start () {
      if (app !== undefined) return
      checkApiExposure(home, formatApiAddress(cfg.address), isLoopbackHost(cfg.address.host))
      const { buildGateway } = await import('./server.js')
      const built = buildGateway(cfg, { ...c, keys: new ApiKeyRing(home) })
      await built.listen({ host: cfg.address.host, port: cfg.address.port })
      app = built
      const a = built.server.address()
      c.log.info({ address: typeof a === 'object' && a !== null ? `${a.address}:${a.port}` : String(a) }, 'OpenAI-compatible API listening')
    },
    async stop () {
      const a = app
      app = undefined
      await a?.close()
    }
  }
}
