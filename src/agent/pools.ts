import { MeshError } from '../errors.js'
import {
  VerifyError, decodeCertRequest, decodeMemberCert, listPoolIds, poolTrust, readPoolRecord, recordCert, verifyCertRequestSignature,
  verifyMemberCert, type CertRequest, type MemberCert, type PoolRecord
} from '../pool/index.js'
import type { Checked, PoolTrustView } from './beacon/receive.js'

/** One pool this device belongs to or is joining, as read from the pool store (src/pool). */
export interface AgentPool {
  poolId: string
  record: PoolRecord
  /** our own certificate, when we hold one */
  cert: MemberCert | undefined
  isAdmin: boolean
  view: PoolTrustView<MemberCert, CertRequest>
}

export type PoolsChange = 'none' | 'changed'

/**
 * The agent's view of MESH_HOME/pools: re-read on demand (the CLI writes it: pool-join,
 * pool-approve…), with a trust view per pool for the beacon receive path. A pool file that turns
 * unreadable keeps its last good state and is reported through `onBadFile`, so one hand-edited file
 * does not take the agent or the other pools down.
 */
export class PoolDirectory {
  private pools = new Map<string, AgentPool>()
  private fingerprint = ''

  constructor (private readonly home: string, private readonly onBadFile: (poolId: string, err: MeshError) => void) {}

  refresh (): PoolsChange {
    const next = new Map<string, AgentPool>()
    for (const poolId of listPoolIds(this.home)) {
      try {
        next.set(poolId, agentPool(readPoolRecord(this.home, poolId)))
      } catch (err) {
        if (!(err instanceof MeshError)) throw err
        this.onBadFile(poolId, err)
        const old = this.pools.get(poolId)
        if (old !== undefined) next.set(poolId, old)
      }
    }
    this.pools = next
    // what others can see of us: which pools, and which certificate we hold in each
    const fp = [...next.values()].map((p) => `${p.poolId}:${p.record.state}:${p.cert?.serial ?? '-'}:${p.record.revocation ?? '-'}`).join(',')
    const changed = fp !== this.fingerprint
    this.fingerprint = fp
    return changed ? 'changed' : 'none'
  }

  get (poolId: string): AgentPool | undefined { return this.pools.get(poolId) }
  all (): AgentPool[] { return [...this.pools.values()] }
  views (): Map<string, PoolTrustView<MemberCert, CertRequest>> {
    return new Map([...this.pools].map(([id, p]) => [id, p.view]))
  }
}

/** verified certificates remembered per pool view: a member announces the same one every few seconds */
const CERT_CACHE = 256

function agentPool (record: PoolRecord): AgentPool {
  const trust = poolTrust(record)
  const verified = new Map<string, MemberCert>() // by base64 of the bytes; a new view (pool change) starts empty
  const wrongKey = { ok: false, reason: 'bound to another device', wrongKey: true } as const
  return {
    poolId: record.poolId,
    record,
    cert: recordCert(record),
    isAdmin: record.role === 'admin',
    view: {
      isAdmin: record.role === 'admin',
      checkCert: (bytes, key, now) => guard(() => {
        const id = Buffer.from(bytes).toString('base64')
        const known = verified.get(id)
        if (known !== undefined) {
          if (!equalBytes(known.devicePublicKey, key)) return wrongKey
          if (now < known.notBefore || now >= known.notAfter) return { ok: false, reason: 'expired' }
          return { ok: true, value: known, publicKey: known.devicePublicKey }
        }
        const cert = decodeMemberCert(bytes)
        if (!equalBytes(cert.devicePublicKey, key)) return wrongKey // before the costly signature check
        verifyMemberCert(cert, trust, now)
        if (verified.size >= CERT_CACHE) verified.delete(verified.keys().next().value as string)
        verified.set(id, cert)
        return { ok: true, value: cert, publicKey: cert.devicePublicKey }
      }),
      checkRequest: (bytes, key) => guard(() => {
        const req = decodeCertRequest(bytes)
        if (!equalBytes(req.devicePublicKey, key)) return wrongKey
        if (req.poolId !== record.poolId) return { ok: false, reason: 'wrong-pool' }
        verifyCertRequestSignature(req)
        return { ok: true, value: req, publicKey: req.devicePublicKey }
      })
    }
  }
}

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(b)

/** Bad bytes from the network are a verdict, not an exception. */
function guard<T> (check: () => Checked<T>): Checked<T> {
  try {
    return check()
  } catch (err) {
    if (err instanceof VerifyError) return { ok: false, reason: err.reason }
    throw err
  }
}
