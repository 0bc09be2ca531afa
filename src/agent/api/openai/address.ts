import net from 'node:net'
import { UsageError } from '../../../errors.js'

/** Where the OpenAI-compatible gateway listens: `mesh start --api [HOST:]PORT`. */
export interface ApiAddress {
  readonly host: string
  readonly port: number
}

/** Loopback unless asked otherwise: the gateway runs jobs on the whole pool, so the LAN needs a key. */
export const DEFAULT_API_HOST = '127.0.0.1'

/** `PORT`, `HOST:PORT` or `[IPv6]:PORT`; port 0 lets the system choose (tests). */
export function parseApiAddress (text: string): ApiAddress {
  const t = text.trim()
  const m = /^(?:\[([0-9a-fA-F:.]+)\]:|([A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(t)
  const port = m === null ? NaN : Number(m[3])
  const host = m?.[1] ?? m?.[2] ?? DEFAULT_API_HOST
  if (m === null || port > 65535 || (m[1] !== undefined && !net.isIPv6(host)) || (/^[\d.]+$/.test(host) && !net.isIPv4(host))) {
    throw new UsageError(`API address ${JSON.stringify(text)} is not [HOST:]PORT (e.g. --api 8000, or --api 0.0.0.0:8000 for the LAN with an API key)`)
  }
  return { host, port }
}

/** An address that only this machine can reach. */
export function isLoopbackHost (host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '')
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || (net.isIPv4(h) && h.startsWith('127.'))
}

export const formatApiAddress = (a: ApiAddress): string => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`
