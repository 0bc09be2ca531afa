/**
 * Who may use the relay: a peer is admitted for a pool once it showed, on `/mesh/cert/1.0.0`
 * (the agents' certificate exchange), a valid certificate of a pool the relay serves that names
 * the peer itself (the PeerId proven in the Noise handshake; certificates are public, so naming
 * is what makes one proof). A reservation needs one admitted pool; a relayed connection needs
 * both ends admitted in a common pool, except that a device without a certificate may reach a
 * pool's admin to ask for one (`mesh pool-join --bootstrap` across a NAT): those joins share a
 * small rate budget, and the admin drops the connection unless it is a certificate request.
 * Refusals are counted by reason.
 *
 * Exports: RelayDropReason, RelayAdmission.
 */
import { TokenBucket } from '../token-bucket.js'
import { decodeCertBundle } from '../agent/net/cert-bundle.js'
import { decodeMemberCert, expectCertNode, verifyMemberCert, VerifyError, type PoolTrust } from '../pool/index.js'

export type RelayDropReason =
  | 'bad-bundle' // not a certificate bundle
  | 'invalid-certificate' // malformed, expired, revoked, wrong root…
  | 'not-served' // a certificate of a pool this relay does not serve
  | 'wrong-node' // another device's certificate
  | 'reservation-refused' // reservation from a peer without a valid certificate
  | 'connect-refused' // relayed connection between peers that share no admitted pool
  | 'not-admitted' // connected, showed no valid certificate in time
  | 'join-rate-limited' // too many certificate-less devices asking to reach an admin

interface Admitted {
  /** pool id → the certificate's notAfter */
  readonly pools: Map<string, number>
  /** pools whose certificate names the peer an admin */
  readonly adminOf: Set<string>
}

/** certificate-less devices reaching an admin: a few at once, a few a second after that */
const JOIN_BURST = 20
const JOIN_PER_SECOND = 2

export class RelayAdmission {
  private readonly admitted = new Map<string, Admitted>()
  private readonly waiting = new Map<string, Set<() => void>>()
  readonly drops = new Map<RelayDropReason, number>()
  /** relayed connections opened for a device without a certificate to ask an admin for one */
  joins = 0
  private readonly joinBudget = new TokenBucket(JOIN_BURST, JOIN_PER_SECOND)

  /** `trust()` gives the pools served right now (it may change while the relay runs). */
  constructor (private readonly trust: () => readonly PoolTrust[]) {}

  count (reason: RelayDropReason): void { this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1) }

  /** Take a certificate bundle a peer sent; returns the pools it is admitted for now. */
  present (peerId: string, bundleBytes: Uint8Array, now: number): string[] {
    let certificates: readonly Uint8Array[]
    try { certificates = decodeCertBundle(bundleBytes).certificates } catch { this.count('bad-bundle'); return this.poolsOf(peerId, now) }
    const served = new Map(this.trust().map((t) => [t.poolId, t]))
    for (const bytes of certificates) {
      try {
        const cert = decodeMemberCert(bytes)
        const trust = served.get(cert.poolId)
        if (trust === undefined) { this.count('not-served'); continue }
        verifyMemberCert(cert, trust, now)
        expectCertNode(cert, peerId)
        const entry = this.admitted.get(peerId) ?? { pools: new Map<string, number>(), adminOf: new Set<string>() }
        entry.pools.set(cert.poolId, Math.max(entry.pools.get(cert.poolId) ?? 0, cert.notAfter))
        if (cert.roles.includes('admin')) entry.adminOf.add(cert.poolId)
        this.admitted.set(peerId, entry)
      } catch (err) {
        if (!(err instanceof VerifyError)) throw err
        this.count(err.reason === 'wrong-node' ? 'wrong-node' : 'invalid-certificate')
      }
    }
    const pools = this.poolsOf(peerId, now)
    if (pools.length > 0) for (const wake of this.waiting.get(peerId) ?? []) wake()
    return pools
  }

  /** Pools the peer holds an unexpired certificate of, among those still served. */
  poolsOf (peerId: string, now: number): string[] {
    const entry = this.admitted.get(peerId)
    if (entry === undefined) return []
    const served = new Set(this.trust().map((t) => t.poolId))
    return [...entry.pools].filter(([poolId, notAfter]) => now < notAfter && served.has(poolId)).map(([poolId]) => poolId)
  }

  /** Resolves once the peer is admitted for some pool, or after `waitMs`. */
  private async waitAdmitted (peerId: string, waitMs: number, now: () => number): Promise<void> {
    if (this.poolsOf(peerId, now()).length > 0 || waitMs <= 0) return
    await new Promise<void>((resolve) => {
      const set = this.waiting.get(peerId) ?? new Set<() => void>()
      const done = (): void => { clearTimeout(timer); set.delete(done); if (set.size === 0) this.waiting.delete(peerId); resolve() }
      const timer = setTimeout(done, waitMs)
      set.add(done)
      this.waiting.set(peerId, set)
    })
  }

  /**
   * Whether the peer may reserve a slot. Its certificates travel on their own stream, so they may
   * arrive just after the reservation request: wait for them up to `waitMs`.
   */
  async mayReserve (peerId: string, waitMs: number, now: () => number = Date.now): Promise<boolean> {
    await this.waitAdmitted(peerId, waitMs, now)
    const ok = this.poolsOf(peerId, now()).length > 0
    if (!ok) this.count('reservation-refused')
    return ok
  }

  /**
   * Whether `source` may reach `destination` through the relay: both admitted in a common pool.
   * The destination holds a reservation, so it is admitted already; the source may have connected
   * a moment ago, so its certificates get `waitMs` to arrive.
   */
  async mayConnect (source: string, destination: string, waitMs: number, now: () => number = Date.now): Promise<boolean> {
    await this.waitAdmitted(source, waitMs, now)
    const theirs = new Set(this.poolsOf(destination, now()))
    const ours = this.poolsOf(source, now())
    if (ours.some((p) => theirs.has(p))) return true
    // a device without any certificate of ours may reach a served pool's admin to ask for one
    const admin = this.admitted.get(destination)
    if (ours.length === 0 && admin !== undefined && [...admin.adminOf].some((p) => theirs.has(p))) {
      if (!this.joinBudget.take(now())) { this.count('join-rate-limited'); return false }
      this.joins++
      return true
    }
    this.count('connect-refused')
    return false
  }

  forget (peerId: string): void { this.admitted.delete(peerId) }
}
