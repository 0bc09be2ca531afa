/**
 * The agent's use of mesh-control-plane (`mesh start --control-plane URL`): for every pool where it
 * holds a certificate, register, join the HTTP ring and heartbeat it; the members that ring lists
 * are handed to the pool network to dial. So a member that hears no beacon (multicast blocked, no
 * --bootstrap) still finds the others and joins the gossip ring, and the control plane's ring, the
 * same pure function of the same members, agrees with the gossip ring when both work.
 *
 * Heartbeats go out whether or not gossip works: a member without gossip can only find those the
 * control plane knows about.
 *
 * Exports: ControlPlaneLinkComponents, ControlPlaneLinkStatus, ControlPlaneLink.
 */
import { ControlPlaneClient, ControlPlaneRequestError } from '../control-plane/client.js'
import type { RingView } from '../control-plane/ring-view.js'
import { MeshError } from '../errors.js'
import { RateLimitedWarner, type Logger } from './log.js'

/** what the link needs of one pool: the certificate it signs with and the root key it registers */
export interface LinkPool { poolId: string, rootPublicKey: Uint8Array, certBytes: Uint8Array }

export interface ControlPlaneLinkComponents {
  url: string
  nodeId: string
  /** the device's ed25519 seed: every request is signed with it */
  privateKey: Uint8Array
  pools: () => LinkPool[]
  net: { listenAddresses: () => string[], addPeerAddresses: (nodeId: string, addrs: readonly string[]) => void }
  log: Logger
  clock?: () => number
}

/** the control plane drops a member silent for 6 s: three heartbeats fit */
const HEARTBEAT_MS = 2000
/** per request; a stop waits at most this for the goodbye */
const REQUEST_TIMEOUT_MS = 3000

export interface ControlPlaneLinkStatus {
  url: string
  pools: Array<{ poolId: string, joined: boolean, epoch: number | null, hash: string | null, members: number, error: string | null }>
}

interface PoolLinkState { client: ControlPlaneClient, registered: boolean, joinedWith: string | undefined, view: RingView | undefined, error: string | null }

export class ControlPlaneLink {
  private timer: NodeJS.Timeout | undefined
  private readonly state = new Map<string, PoolLinkState>()
  private running: Promise<void> | undefined
  private readonly warner: RateLimitedWarner
  private readonly clock: () => number

  constructor (private readonly c: ControlPlaneLinkComponents) {
    this.warner = new RateLimitedWarner(c.log)
    this.clock = c.clock ?? Date.now
  }

  start (): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => { void this.tick() }, HEARTBEAT_MS)
    void this.tick()
  }

  async stop (): Promise<void> {
    if (this.timer === undefined) return
    clearInterval(this.timer)
    this.timer = undefined
    await this.running
    // leave at once rather than after the control plane's TTL
    await Promise.all([...this.state.values()].filter((s) => s.joinedWith !== undefined).map(async (s) => {
      await s.client.leaveRing().catch(() => {})
    }))
    this.state.clear()
  }

  status (): ControlPlaneLinkStatus {
    return {
      url: this.c.url,
      pools: [...this.state].map(([poolId, s]) => ({
        poolId, joined: s.joinedWith !== undefined, epoch: s.view?.epoch ?? null, hash: s.view?.hash ?? null, members: s.view?.members.length ?? 0, error: s.error
      }))
    }
  }

  /** One round: every pool registered, joined (again, if our addresses changed) or heartbeated. */
  async tick (): Promise<void> {
    if (this.running !== undefined) return // a slow control plane: skip rather than pile up
    this.running = Promise.all(this.c.pools().map(async (p) => { await this.syncPool(p) })).then(() => {})
    try { await this.running } finally { this.running = undefined }
  }

  private async syncPool (p: LinkPool): Promise<void> {
    let s = this.state.get(p.poolId)
    if (s === undefined) {
      const client = new ControlPlaneClient(this.c.url, p.poolId, { certBytes: p.certBytes, privateKey: this.c.privateKey }, { timeoutMs: REQUEST_TIMEOUT_MS })
      s = { client, registered: false, joinedWith: undefined, view: undefined, error: null }
      this.state.set(p.poolId, s)
    }
    const addresses = this.c.net.listenAddresses()
    try {
      if (!s.registered) { await s.client.register(p.rootPublicKey); s.registered = true }
      const key = addresses.join(' ')
      s.view = s.joinedWith === key ? await s.client.heartbeat() : await s.client.joinRing({ addresses })
      s.joinedWith = key
      s.error = null
      for (const m of s.view.members) if (m.nodeId !== this.c.nodeId) this.c.net.addPeerAddresses(m.nodeId, m.addresses)
    } catch (err) {
      if (!(err instanceof MeshError)) throw err
      // 409: dropped from the ring (silent too long): join again; 403: not registered (a new database)
      if (err instanceof ControlPlaneRequestError && err.status === 409) s.joinedWith = undefined
      if (err instanceof ControlPlaneRequestError && err.status === 403) { s.registered = false; s.joinedWith = undefined }
      s.error = err.message
      this.warner.warn(`control-plane:${p.poolId}`, this.clock(), { pool: p.poolId, err: err.message }, 'control plane request failed; retrying')
    }
  }
}
