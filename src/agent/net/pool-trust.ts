import {
  acceptRevocationList, decodeMemberCert, decodeRevocationList, poolTrust,
  recordCert, recordRevocation, verifyMemberCert, UnknownPoolError, type PoolRecord
} from '../../pool/index.js'
import type { CertifiedPeer, PoolTrustStore } from './trust.js'

/**
 * The pool network's view of MESH_HOME's pool records: certificates are verified with the pool
 * library against the record's root key and newest revocation list; revocation lists from peers
 * are stored through it. `reload` takes the records again from `records` (the agent's pool
 * directory, which re-reads the store: `mesh pool-revoke` or the join flow may have changed it)
 * and says whether anything that matters changed.
 */
export class RecordPoolTrust implements PoolTrustStore {
  private current: PoolRecord[] = []
  /** our verified certificates, computed on reload: they are asked for on every bundle */
  private own: CertifiedPeer[] = []
  private fingerprint = ''

  constructor (private readonly home: string, private readonly nodeId: string, private readonly records: () => PoolRecord[]) {
    this.reload()
  }

  reload (): boolean {
    const records = this.records()
    const fingerprint = JSON.stringify(records.map((r) => [r.poolId, r.certificate, r.revocation]))
    this.current = records
    if (fingerprint === this.fingerprint) return false
    this.fingerprint = fingerprint
    const now = Date.now()
    this.own = records.flatMap((r) => {
      const cert = recordCert(r)
      if (cert === undefined || cert.nodeId !== this.nodeId) return []
      try { verifyMemberCert(cert, poolTrust(r), now) } catch { return [] } // revoked or not valid: not in the ring
      return [certified(cert)]
    })
    return true
  }

  memberPools (): CertifiedPeer[] {
    const now = Date.now()
    return this.own.filter((c) => c.notAfter > now)
  }

  poolName (poolId: string): string {
    return this.current.find((r) => r.poolId === poolId)?.name ?? ''
  }

  verifyCertificate (bytes: Uint8Array, now: number): CertifiedPeer {
    const cert = decodeMemberCert(bytes)
    const record = this.current.find((r) => r.poolId === cert.poolId)
    if (record === undefined) throw new UnknownPoolError(cert.poolId)
    verifyMemberCert(cert, poolTrust(record), now)
    return certified(cert)
  }

  revocationLists (): Uint8Array[] {
    return this.current.flatMap((r) => { const l = recordRevocation(r); return l === undefined ? [] : [l.bytes] })
  }

  acceptRevocationList (bytes: Uint8Array): string | undefined {
    const { poolId } = decodeRevocationList(bytes)
    if (!this.current.some((r) => r.poolId === poolId)) return undefined
    const { changed } = acceptRevocationList(this.home, poolId, bytes)
    if (!changed) return undefined
    this.reload()
    return poolId
  }
}

function certified (cert: ReturnType<typeof decodeMemberCert>): CertifiedPeer {
  return { poolId: cert.poolId, nodeId: cert.nodeId, name: cert.name, serial: cert.serial, notAfter: cert.notAfter, bytes: cert.bytes }
}
