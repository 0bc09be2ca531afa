/**
 * Hole punching between members that reach each other only through a relay.
 *
 * Stock js-libp2p cannot punch TCP between two NATed peers (STACK.md), so the upgrade is a WebRTC
 * connection (@libp2p/webrtc): ICE over UDP, its offer, answer and candidates signalled on the
 * relayed libp2p connection, the public candidates learned from the relays' STUN responders. Once
 * the WebRTC connection is up it is a direct, unlimited libp2p connection: gossip, jobs and the
 * tensor plane's stream use it instead of the relay, which stays as the fallback.
 *
 * The member with the smaller node id starts; the other answers (the transport's signalling
 * handler). A failed attempt backs off, so a pair that cannot punch (symmetric ↔ symmetric, UDP
 * blocked) stays relayed and costs an attempt every few minutes, not a storm; a pair both of whose
 * NATs measured symmetric is not tried at all.
 *
 * Exports: iceServersFor, releaseWebRtc, webrtcAddress, relayOf, punchStep, PunchState, PunchStats, HolePuncher.
 */
import type { NatType } from '../../nat/classify.js'
import type { Logger } from '../log.js'
import { stunTargets } from './nat-detector.js'

/** ICE's STUN servers: the relays' STUN responders, never a public service (pools are private, and may be offline). */
export function iceServersFor (relays: readonly string[], stunPort: number): Array<{ urls: string[] }> {
  return stunTargets(relays, stunPort).map((e) => ({ urls: [`stun:${e.address}:${e.port}`] }))
}

/**
 * Let go of WebRTC's native threads (node-datachannel) once the process is done with networking:
 * they hold the event loop, so a stopped agent would never exit. Process-wide: call it only when
 * the process's last pool network has stopped.
 */
export async function releaseWebRtc (): Promise<void> {
  try { (await import('node-datachannel')).cleanup() } catch { /* never loaded, or not installed: nothing holds the loop */ }
}

/** The address the WebRTC transport dials: through `relayAddr` to `nodeId`, then upgraded to WebRTC. */
export function webrtcAddress (relayAddr: string, nodeId: string): string {
  return `${relayAddr}/p2p-circuit/webrtc/p2p/${nodeId}`
}

/** The relay of a relayed connection's remote address (…/p2p/RELAY/p2p-circuit/p2p/NODE), or undefined. */
export function relayOf (remoteAddr: string): string | undefined {
  const at = remoteAddr.indexOf('/p2p-circuit')
  if (at <= 0 || remoteAddr.includes('/webrtc')) return undefined
  return remoteAddr.slice(0, at)
}

/** One pair's attempts so far. */
export interface PunchState {
  readonly failures: number
  /** monotonic ms before which no attempt starts */
  readonly nextAtMs: number
  readonly inFlight: boolean
}

export type PunchStep =
  | { readonly kind: 'attempt' }
  | { readonly kind: 'wait', readonly untilMs: number }
  | { readonly kind: 'skip', readonly reason: 'peer-starts' | 'both-symmetric' | 'in-flight' }

/** first retry after 5 s, then ×3 up to 5 minutes: a NAT that failed once rarely changes its mind soon */
export function backoffMs (failures: number): number {
  return Math.min(300_000, 5000 * 3 ** Math.max(0, failures - 1))
}

/**
 * Whether to try an upgrade to a relayed-only member now. Pure: the caller keeps the state and the
 * clock. `peerPublic`: the member announces a public address, which we dial directly first (the
 * one-sided upgrade: a NATed member reaches a public one by TCP), whichever id is smaller.
 */
export function punchStep (s: PunchState | undefined, selfId: string, peerId: string, nat: { self: NatType, peer: NatType | undefined }, nowMs: number, peerPublic = false): PunchStep {
  if (selfId > peerId && !peerPublic) return { kind: 'skip', reason: 'peer-starts' } // the smaller id offers; two offers would race
  if (nat.self === 'symmetric' && nat.peer === 'symmetric') return { kind: 'skip', reason: 'both-symmetric' }
  if (s === undefined) return { kind: 'attempt' }
  if (s.inFlight) return { kind: 'skip', reason: 'in-flight' }
  if (nowMs < s.nextAtMs) return { kind: 'wait', untilMs: s.nextAtMs }
  return { kind: 'attempt' }
}

export interface PunchStats {
  attempts: number
  succeeded: number
  failed: number
  /** the last attempt's duration in ms (relayed → direct when it worked) */
  lastMs: number | null
  lastError: string | null
}

export interface HolePuncherComponents {
  readonly selfId: string
  /**
   * connected members without a direct TCP connection: the relay of their relayed connection
   * (undefined once hole-punched) and the public (direct-wan) addresses they announce
   */
  readonly relayedMembers: () => Array<{ nodeId: string, relay: string | undefined, publicAddrs: readonly string[] }>
  /** dial the WebRTC address; resolves once the connection is up */
  readonly dial: (addr: string, signal: AbortSignal) => Promise<void>
  /** dial a member's public addresses directly (TCP); resolves once connected */
  readonly dialDirect: (nodeId: string, addrs: readonly string[], signal: AbortSignal) => Promise<void>
  readonly nat: (nodeId: string | undefined) => NatType | undefined
  readonly log: Logger
  readonly now: () => number
}

export interface HolePuncherInit {
  /** an attempt that has not connected by then has failed (ICE gives up on its own after about 30 s) */
  readonly attemptTimeoutMs?: number
}

export class HolePuncher {
  private readonly state = new Map<string, PunchState>()
  private readonly counts: PunchStats = { attempts: 0, succeeded: 0, failed: 0, lastMs: null, lastError: null }
  private readonly attemptTimeoutMs: number

  constructor (private readonly c: HolePuncherComponents, init: HolePuncherInit = {}) {
    this.attemptTimeoutMs = init.attemptTimeoutMs ?? 15_000
  }

  stats (): PunchStats { return { ...this.counts } }

  /** Try every relayed-only member whose turn it is (the pool network calls it on its redial timer and on admission). */
  tick (): void {
    const now = this.c.now()
    const relayed = this.c.relayedMembers()
    const wanted = new Set(relayed.map((m) => m.nodeId))
    // a member that went direct or away starts afresh next time it is relayed
    for (const id of [...this.state.keys()]) if (!wanted.has(id) && this.state.get(id)?.inFlight !== true) this.state.delete(id)
    for (const m of relayed) {
      if (m.relay === undefined && m.publicAddrs.length === 0) continue // hole-punched, nothing better to try
      const step = punchStep(this.state.get(m.nodeId), this.c.selfId, m.nodeId, { self: this.c.nat(undefined) ?? 'unknown', peer: this.c.nat(m.nodeId) }, now, m.publicAddrs.length > 0)
      if (step.kind === 'attempt') void this.attempt(m.nodeId, m.relay, m.publicAddrs)
    }
  }

  /** A direct TCP dial to a public address first (cheapest, and the fastest tensor path), then WebRTC if we are the one to offer. */
  private async upgrade (nodeId: string, relay: string | undefined, publicAddrs: readonly string[]): Promise<'direct-wan' | 'hole-punched'> {
    if (publicAddrs.length > 0) {
      try {
        await this.c.dialDirect(nodeId, publicAddrs, AbortSignal.timeout(this.attemptTimeoutMs))
        return 'direct-wan'
      } catch (err) {
        // the member offers WebRTC itself; a hole-punched member keeps what it has
        if (this.c.selfId > nodeId || relay === undefined) throw err
      }
    }
    if (relay === undefined) throw new Error('no relay to signal WebRTC through')
    await this.c.dial(webrtcAddress(relay, nodeId), AbortSignal.timeout(this.attemptTimeoutMs))
    return 'hole-punched'
  }

  private async attempt (nodeId: string, relay: string | undefined, publicAddrs: readonly string[]): Promise<void> {
    const prev = this.state.get(nodeId)
    this.state.set(nodeId, { failures: prev?.failures ?? 0, nextAtMs: prev?.nextAtMs ?? 0, inFlight: true })
    this.counts.attempts++
    const t0 = this.c.now()
    try {
      const path = await this.upgrade(nodeId, relay, publicAddrs)
      this.counts.succeeded++
      this.counts.lastMs = Math.round(this.c.now() - t0)
      this.state.delete(nodeId)
      this.c.log.info({ peer: nodeId, ms: this.counts.lastMs, path }, path === 'hole-punched' ? 'hole punched: direct WebRTC connection beside the relayed one' : 'direct connection to the member\'s public address beside the relayed one')
    } catch (err) {
      const failures = (prev?.failures ?? 0) + 1
      this.counts.failed++
      this.counts.lastMs = Math.round(this.c.now() - t0)
      this.counts.lastError = (err as Error).message
      this.state.set(nodeId, { failures, nextAtMs: this.c.now() + backoffMs(failures), inFlight: false })
      this.c.log.info({ peer: nodeId, failures, retryInMs: backoffMs(failures), err: (err as Error).message }, 'hole punching failed; staying on the relay')
    }
  }
}
