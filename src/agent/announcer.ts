import type { BeaconService } from './beacon/service.js'
import type { UnicastTarget } from './beacon/transport.js'
import type { BeaconConfig } from './config.js'
import type { PoolDirectory } from './pools.js'

export interface AnnouncerComponents {
  beacons: BeaconService
  pools: PoolDirectory
  clock: () => number
  /** extra unicast targets for announces (peers only reachable that way) */
  unicastTargets: () => UnicastTarget[]
  listenAddrs: () => string[]
  capabilities: () => string[]
}

/** a reactive announce (a peer appeared) waits at most this long, and more are coalesced into it */
const SOON_MS = 100

/**
 * Announces this device in every pool where it holds a certificate: every intervalMs, in a burst at
 * start and after a change (new certificate, interfaces), and once soon after a new peer appears so
 * the newcomer sees us without waiting a whole interval.
 */
export class Announcer {
  private interval: NodeJS.Timeout | undefined
  private readonly timers = new Set<NodeJS.Timeout>()
  private soonTimer: NodeJS.Timeout | undefined

  constructor (private readonly cfg: BeaconConfig, private readonly c: AnnouncerComponents) {}

  start (): void {
    if (this.interval !== undefined) return
    this.interval = setInterval(() => { this.announceAll() }, this.cfg.intervalMs)
    this.burst()
  }

  stop (): void {
    clearInterval(this.interval)
    this.interval = undefined
    clearTimeout(this.soonTimer)
    this.soonTimer = undefined
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  burst (): void {
    for (const offset of this.cfg.burstOffsetsMs) {
      const t = setTimeout(() => { this.timers.delete(t); this.announceAll() }, offset)
      this.timers.add(t)
    }
  }

  soon (): void {
    if (this.soonTimer !== undefined || this.interval === undefined) return
    this.soonTimer = setTimeout(() => { this.soonTimer = undefined; this.announceAll() }, SOON_MS)
  }

  private announceAll (): void {
    const now = this.c.clock()
    const unicast = this.c.unicastTargets()
    for (const pool of this.c.pools.all()) {
      const cert = pool.cert
      if (cert === undefined || now >= cert.notAfter) continue
      this.c.beacons.send(pool.poolId, {
        type: 'announce', cert: cert.bytes, capabilities: this.c.capabilities(), listenAddrs: this.c.listenAddrs()
      }, unicast)
    }
  }
}
