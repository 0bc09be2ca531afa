/**
 * Announce the public addresses this node really listens on. libp2p 3 hides a public address
 * until AutoNAT (or an `announce` entry) verifies it; a mesh pool has no AutoNAT servers, so a
 * relay or member bound to a public IP would announce nothing but its private addresses. An
 * address of one of our own interfaces is ours, so it is confirmed as soon as a transport listens
 * on it (and again before libp2p's verification would lapse). Whether a firewall lets peers in is
 * another question: members still fall back to the relay.
 *
 * Exports: publicTransportAddrs, PublicAddressComponents, ownPublicAddresses.
 */
import type { Startable } from '@libp2p/interface'
import { isPrivateIp } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'

/** The public IP addresses among transport addresses (not private in js-libp2p's sense, no relay hop). */
export function publicTransportAddrs (addrs: readonly string[]): string[] {
  return addrs.filter((a) => {
    if (a.includes('/p2p-circuit')) return false
    const m = /^\/ip4\/([^/]+)\/(?:tcp|udp)\//.exec(a)
    return m !== null && isPrivateIp(m[1] as string) === false && m[1] !== '0.0.0.0'
  })
}

/** The parts of libp2p's components this service uses (structural: no dependency on interface-internal). */
export interface PublicAddressComponents {
  addressManager: { confirmObservedAddr: (addr: Multiaddr, options?: { ttl?: number, type?: 'transport' }) => void }
  transportManager: { getAddrs: () => Multiaddr[] }
  events: EventTarget
}

// libp2p re-verifies confirmed addresses after their ttl: confirm for a day, again every hour
const TTL_MS = 24 * 60 * 60_000
const RECONFIRM_MS = 60 * 60_000

class OwnPublicAddresses implements Startable {
  private timer: NodeJS.Timeout | undefined
  private readonly onListening = (): void => { this.confirm() }
  constructor (private readonly c: PublicAddressComponents) {}

  private confirm (): void {
    const all = this.c.transportManager.getAddrs()
    const pub = new Set(publicTransportAddrs(all.map((a) => a.toString())))
    for (const a of all) if (pub.has(a.toString())) this.c.addressManager.confirmObservedAddr(a, { ttl: TTL_MS, type: 'transport' })
  }

  start (): void {
    this.c.events.addEventListener('transport:listening', this.onListening)
  }

  afterStart (): void {
    this.confirm()
    this.timer = setInterval(() => { this.confirm() }, RECONFIRM_MS)
    this.timer.unref()
  }

  stop (): void {
    this.c.events.removeEventListener('transport:listening', this.onListening)
    clearInterval(this.timer)
  }
}

/** A libp2p service: `services: { publicAddresses: ownPublicAddresses() }`. */
export const ownPublicAddresses = () => (c: PublicAddressComponents): Startable => new OwnPublicAddresses(c)
