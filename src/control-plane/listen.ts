/**
 * Bind the HTTP server: an explicit port or nothing; otherwise the first free port of a range
 * (8080-8179 by default), so a second control plane or another web server does not stop it.
 *
 * Exports: DEFAULT_PORT, PORT_SPAN, PortChoice, candidatePorts, listenWithFallback.
 */
import type { FastifyInstance } from 'fastify'
import { ListenError, NoFreePortError, PortBusyError } from './errors.js'

export const DEFAULT_PORT = 8080
/** ports tried when none is fixed: base .. base + PORT_SPAN - 1 */
export const PORT_SPAN = 100

export interface PortChoice {
  readonly host: string
  /** fixed by the user: that port or an error */
  readonly port?: number | undefined
  /** first port of the automatic range */
  readonly base: number
}

export function candidatePorts (c: PortChoice): number[] {
  if (c.port !== undefined) return [c.port]
  const last = Math.min(65535, c.base + PORT_SPAN - 1)
  return Array.from({ length: last - c.base + 1 }, (_, i) => c.base + i)
}

function isAddressInUse (err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'EADDRINUSE'
}

/** The port bound. */
export async function listenWithFallback (app: FastifyInstance, c: PortChoice): Promise<number> {
  const ports = candidatePorts(c)
  for (const port of ports) {
    try {
      await app.listen({ host: c.host, port })
      const address = app.server.address()
      // port 0 lets the system choose: report the one it chose
      return typeof address === 'object' && address !== null ? address.port : port
    } catch (err) {
      if (!isAddressInUse(err)) throw new ListenError(c.host, port, err instanceof Error ? err.message : String(err))
    }
  }
  if (c.port !== undefined) throw new PortBusyError(c.host, c.port)
  throw new NoFreePortError(c.host, ports[0] ?? c.base, ports[ports.length - 1] ?? c.base)
}
