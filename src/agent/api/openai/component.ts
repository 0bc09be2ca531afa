import { MeshError } from '../../../errors.js'
import type { Logger } from '../../log.js'
import { formatApiAddress, isLoopbackHost } from './address.js'
import type { GatewayComponents, GatewayConfig } from './server.js'
import { ApiKeyRing, checkApiExposure } from './keys.js'

/** The API's address cannot be bound (in use, not this machine's, not allowed). */
export class ApiListenError extends MeshError {}

/** The agent's view of the gateway: it starts and stops with the agent. */
export interface Gateway {
  start: () => Promise<void>
  stop: () => Promise<void>
  /** http://HOST:PORT it listens on (the port the system chose for port 0); undefined until started */
  url: () => string | undefined
}

/**
 * The OpenAI-compatible gateway as an agent component. fastify and the routes load only when it
 * starts, so an agent without --api does not pay for them.
 */
export const openAiGateway = (cfg: GatewayConfig, home: string) => (c: Omit<GatewayComponents, 'keys'> & { log: Logger }): Gateway => {
  let app: Awaited<ReturnType<typeof import('./server.js').buildGateway>> | undefined
  let url: string | undefined
  return {
    async start () {
      if (app !== undefined) return
      checkApiExposure(home, formatApiAddress(cfg.address), isLoopbackHost(cfg.address.host))
      const { buildGateway } = await import('./server.js')
      const built = buildGateway(cfg, { ...c, keys: new ApiKeyRing(home) })
      try {
        await built.listen({ host: cfg.address.host, port: cfg.address.port })
      } catch (err) {
        await built.close()
        const code = (err as NodeJS.ErrnoException).code
        const why = code === 'EADDRINUSE' ? 'the port is in use' : code === 'EADDRNOTAVAIL' ? 'that address is not one of this machine\'s' : code === 'EACCES' ? 'a port below 1024 needs root' : (err as Error).message
        throw new ApiListenError(`cannot serve the API on ${formatApiAddress(cfg.address)}: ${why}; choose another with --api [HOST:]PORT`)
      }
      app = built
      const a = built.server.address()
      url = `http://${formatApiAddress({ host: cfg.address.host, port: typeof a === 'object' && a !== null ? a.port : cfg.address.port })}`
      c.log.info({ url }, 'OpenAI-compatible API listening')
    },
    async stop () {
      const a = app
      app = undefined
      url = undefined
      await a?.close()
    },
    url: () => url
  }
}
