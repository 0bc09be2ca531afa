/**
 * The agent's NAT detection: probe the STUN responders of the relays it uses (mesh-relay answers
 * STUN on UDP 3478 and 3479 by default) and of pool members on public addresses (an agent with a
 * public address answers STUN on the UDP port numbered as its libp2p TCP port) at start, whenever
 * those change, and every few minutes; keep the last verdict for `pool-status`. What it measures
 * is UDP behaviour.
 *
 * Exports: NatStatus, stunTargets, memberStunTargets, NatDetectorInit, NatDetectorComponents, NatDetector, natDetector.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { probeNat, type ProbeOptions } from '../../nat/probe.js'
import type { NatType } from '../../nat/classify.js'
import type { Endpoint } from '../../nat/stun.js'
import type { Logger } from '../log.js'
import { publicTransportAddrs } from './public-addresses.js'

export interface NatStatus {
  /** what was measured: NAT mapping of UDP (TCP may be treated otherwise by the same NAT) */
  protocol: 'udp'
  type: NatType
  reason: string
  /** "address:port" as the internet sees this host; "address:*" where the port varies by destination */
  publicEndpoint: string | null
  hairpin: boolean | null
  /** each STUN server asked, where it saw us and its round trip */
  servers: Array<{ server: string, mapped: string | null, rttMs: number | null }>
  /** ISO time of the measurement; null before the first */
  measuredAt: string | null
  /** datagrams dropped on the probing socket, by reason */
  drops: Record<string, number>
}

/** STUN endpoints of relays given as multiaddrs (/ip4/H/… or /dns4/H/…), on `stunPort`; duplicates once. */
export function stunTargets (relays: readonly string[], stunPort: number): Endpoint[] {
  const seen = new Map<string, Endpoint>()
  for (const r of relays) {
    let first
    try { first = multiaddr(r).getComponents()[0] } catch { continue }
    if (first === undefined || first.value === undefined || !['ip4', 'dns4'].includes(first.name)) continue
    seen.set(`${first.value}:${stunPort}`, { address: first.value, port: stunPort })
  }
  return [...seen.values()]
}

/** STUN endpoints of members from their announced addresses: each public /ip4/H/tcp/P answers on UDP H:P. */
export function memberStunTargets (addrs: readonly string[]): Endpoint[] {
  const seen = new Map<string, Endpoint>()
  for (const a of publicTransportAddrs(addrs)) {
    const m = /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(a)
    if (m !== null) seen.set(`${m[1]}:${m[2]}`, { address: m[1] as string, port: Number(m[2]) })
  }
  return [...seen.values()]
}

export interface NatDetectorInit {
  /** the relays' STUN port (mesh-relay --stun-port) */
  stunPort?: number
  /** re-measure this often: NAT mappings and networks change (a laptop moves) */
  intervalMs?: number
  /** how often the relay list is looked at for changes */
  checkMs?: number
  /** a changed list of STUN servers is measured again at most this often (members come and go) */
  minGapMs?: number
  probe?: ProbeOptions
}

export interface NatDetectorComponents {
  relays: () => readonly string[]
  /** STUN endpoints of pool members on public addresses (memberStunTargets) */
  members?: () => readonly Endpoint[]
  log: Logger
}

const NOT_MEASURED: NatStatus = { protocol: 'udp', type: 'unknown', reason: 'not measured yet', publicEndpoint: null, hairpin: null, servers: [], measuredAt: null, drops: {} }

export class NatDetector {
  private timer: NodeJS.Timeout | undefined
  private last: NatStatus = NOT_MEASURED
  private measuredFor = ''
  private measuredAt = 0
  private running: Promise<void> | undefined
  private readonly cfg: Required<Omit<NatDetectorInit, 'probe'>> & { probe: ProbeOptions }

  constructor (init: NatDetectorInit, private readonly c: NatDetectorComponents) {
    this.cfg = { stunPort: 3478, intervalMs: 5 * 60_000, checkMs: 2000, minGapMs: 10_000, probe: {}, ...init }
  }

  status (): NatStatus { return this.last }

  start (): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => { this.maybeMeasure() }, this.cfg.checkMs)
    this.timer.unref()
    this.maybeMeasure()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }

  private maybeMeasure (): void {
    if (this.running !== undefined) return
    const seen = new Map([...stunTargets(this.c.relays(), this.cfg.stunPort), ...(this.c.members?.() ?? [])].map((t) => [`${t.address}:${t.port}`, t]))
    const targets = [...seen.values()]
    const key = [...seen.keys()].sort().join(',')
    const age = Date.now() - this.measuredAt
    if (key === this.measuredFor ? age < this.cfg.intervalMs : this.measuredAt > 0 && age < this.cfg.minGapMs) return
    this.running = this.measure(targets, key).finally(() => { this.running = undefined })
  }

  private async measure (targets: Endpoint[], key: string): Promise<void> {
    this.measuredFor = key
    this.measuredAt = Date.now()
    if (targets.length === 0) { this.last = { ...NOT_MEASURED, reason: 'no STUN server to ask (no relay known)' }; return }
    try {
      const out = await probeNat(targets, this.cfg.probe)
      const v = out.verdict
      const ep = v.publicEndpoint
      this.last = {
        protocol: 'udp',
        type: v.type,
        reason: v.reason,
        publicEndpoint: ep === null ? null : `${ep.address}:${ep.port ?? '*'}`,
        hairpin: v.hairpin,
        servers: out.observation.answers.map((a) => {
          const s = `${a.server.address}:${a.server.port}`
          return { server: s, mapped: a.mapped === null ? null : `${a.mapped.address}:${a.mapped.port}`, rttMs: out.rttMs[s] ?? null }
        }),
        measuredAt: new Date(this.measuredAt).toISOString(),
        drops: { ...out.drops } as Record<string, number>
      }
      this.c.log.info({ nat: v.type, publicEndpoint: this.last.publicEndpoint, reason: v.reason }, 'NAT type measured (UDP)')
    } catch (err) {
      this.last = { ...NOT_MEASURED, reason: `probe failed: ${String(err)}`, measuredAt: new Date(this.measuredAt).toISOString() }
    }
  }
}

/** Two-stage factory: options now, collaborators when the agent wires them. */
export const natDetector = (init: NatDetectorInit = {}) => (c: NatDetectorComponents): NatDetector => new NatDetector(init, c)
