import type { CertifiedPeer, PoolTrustStore } from './trust.js'

/** Why a certificate from a peer was not taken. */
export type CertDropReason = 'invalid-certificate' | 'invalid-revocation'

/**
 * Every valid certificate we know, per pool, from any source: our own, and what peers passed on.
 * A peer proven (by Noise) to be node X is admitted to pool P exactly when this directory holds a
 * valid certificate of P naming X; revocations and expiry take it out again on `recheck`.
 */
export class MemberDirectory {
  private readonly byPool = new Map<string, Map<string, CertifiedPeer>>()

  constructor (private readonly trust: PoolTrustStore) {}

  /** Our pools (those where we hold a certificate). */
  pools (): string[] {
    return this.trust.memberPools().map((c) => c.poolId)
  }

  /** Verify and keep one certificate. Returns true when it is new knowledge. */
  learn (bytes: Uint8Array, now: number): boolean {
    const cert = this.trust.verifyCertificate(bytes, now)
    if (!this.pools().includes(cert.poolId)) return false // a pool we are not (yet) in
    let pool = this.byPool.get(cert.poolId)
    if (pool === undefined) { pool = new Map(); this.byPool.set(cert.poolId, pool) }
    const held = pool.get(cert.nodeId)
    if (held !== undefined && held.notAfter >= cert.notAfter) return false
    pool.set(cert.nodeId, cert)
    return true
  }

  /**
   * Drop certificates that are no longer valid (revoked, expired) and take in our own.
   * Returns the pools whose member set changed.
   */
  recheck (now: number): Set<string> {
    const changed = new Set<string>()
    for (const own of this.trust.memberPools()) {
      if (this.byPool.get(own.poolId)?.get(own.nodeId)?.serial !== own.serial) {
        const pool = this.byPool.get(own.poolId) ?? new Map<string, CertifiedPeer>()
        pool.set(own.nodeId, own)
        this.byPool.set(own.poolId, pool)
        changed.add(own.poolId)
      }
    }
    const ours = new Set(this.pools())
    for (const [poolId, pool] of this.byPool) {
      if (!ours.has(poolId)) { this.byPool.delete(poolId); changed.add(poolId); continue }
      for (const [nodeId, cert] of pool) {
        try {
          this.trust.verifyCertificate(cert.bytes, now)
        } catch {
          pool.delete(nodeId)
          changed.add(poolId)
        }
      }
    }
    return changed
  }

  /** Pools in which node `nodeId` holds a valid certificate that we share. */
  poolsOf (nodeId: string): string[] {
    return [...this.byPool].filter(([, pool]) => pool.has(nodeId)).map(([poolId]) => poolId)
  }

  members (poolId: string): CertifiedPeer[] {
    return [...(this.byPool.get(poolId)?.values() ?? [])]
  }

  /** Everything we know, to pass on to a peer. */
  allCertificates (): Uint8Array[] {
    return [...this.byPool.values()].flatMap((pool) => [...pool.values()].map((c) => c.bytes))
  }
}
