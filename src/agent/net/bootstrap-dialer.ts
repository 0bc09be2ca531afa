/**
 * Keep a libp2p connection to each bootstrap peer (PEER_ID@HOST:PORT or a multiaddr ending in
 * /p2p/PEER_ID): dial it, and while it is not connected redial with exponential backoff (reset once
 * connected). The dial names the peer id, so Noise refuses anyone else; the remote peer is checked
 * again here, and a dial that reached another peer counts as failed.
 *
 * Exports: BootstrapPeerStatus, BootstrapDialerComponents, bootstrapBackoff, BootstrapDialer.
 */
import { backoffDelayMs, type Backoff } from '../backoff.js'
import type { Logger } from '../log.js'

export interface BootstrapPeerStatus {
  addr: string
  peerId: string
  connected: boolean
  /** dials since the last success */
  failures: number
  lastError: string | null
}

export interface BootstrapDialerComponents {
  /** dial the multiaddr; resolves with the remote peer id */
  dial: (addr: string, signal: AbortSignal) => Promise<string>
  connected: (peerId: string) => boolean
  /** hang up on a peer that answered in another's place */
  hangUp: (peerId: string) => void
  clock: () => number
  random: () => number
  log: Logger
}

/** a second, then doubling up to a minute: a peer back from a restart is found within seconds, a dead one costs little */
export const bootstrapBackoff = (): Backoff => ({ initialMs: 1000, factor: 2, maxMs: 60_000, jitter: 0.2 })

interface PeerState extends BootstrapPeerStatus { nextAt: number, dialing: boolean }

const DIAL_TIMEOUT_MS = 10_000
const TICK_MS = 500

export class BootstrapDialer {
  private readonly peers: PeerState[]
  private timer: NodeJS.Timeout | undefined

  constructor (peers: ReadonlyArray<{ addr: string, peerId: string }>, private readonly backoff: Backoff, private readonly c: BootstrapDialerComponents) {
    this.peers = peers.map((p) => ({ ...p, connected: false, failures: 0, lastError: null, nextAt: 0, dialing: false }))
  }

  status (): BootstrapPeerStatus[] {
    return this.peers.map((p) => ({ addr: p.addr, peerId: p.peerId, connected: this.c.connected(p.peerId), failures: p.failures, lastError: p.lastError }))
  }

  /** The peer ids we bootstrap from (certificate requests go to them). */
  peerIds (): string[] { return this.peers.map((p) => p.peerId) }

  start (): void {
    if (this.timer !== undefined || this.peers.length === 0) return
    this.timer = setInterval(() => { this.tick() }, TICK_MS)
    this.timer.unref()
    this.tick()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  private tick (): void {
    const now = this.c.clock()
    for (const p of this.peers) {
      if (p.dialing || now < p.nextAt) continue
      if (this.c.connected(p.peerId)) { p.failures = 0; continue }
      void this.dial(p)
    }
  }

  private async dial (p: PeerState): Promise<void> {
    p.dialing = true
    try {
      const remote = await this.c.dial(p.addr, AbortSignal.timeout(DIAL_TIMEOUT_MS))
      if (remote !== p.peerId) {
        this.c.hangUp(remote)
        throw new Error(`answered by ${remote}, not ${p.peerId}`)
      }
      if (p.failures > 0 || p.lastError !== null) this.c.log.info({ peer: p.addr }, 'bootstrap peer connected')
      p.failures = 0
      p.lastError = null
      p.nextAt = this.c.clock()
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? 'dial failed'
      if (p.failures === 0) this.c.log.warn({ peer: p.addr, err: message }, 'cannot reach the bootstrap peer; retrying with backoff')
      p.lastError = message
      p.nextAt = this.c.clock() + backoffDelayMs(p.failures, this.backoff, this.c.random())
      p.failures++
    } finally {
      p.dialing = false
    }
  }
}
