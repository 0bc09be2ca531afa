/**
 * What `pool-list` and `pool-status` show of a pool record: a plain summary, computed from the record
 * and `now` (pure), with the certificate checked against the root and the held revocation list.
 *
 * Exports: CertStatus, PoolSummary, summarizePool.
 */
import { verifyMemberCert } from './cert.js'
import { VerifyError } from './errors.js'
import { shortPoolId } from './pool-id.js'
import { poolTrust, recordCert, recordRevocation, type PoolRecord } from './store.js'

/** 'none' while waiting for the admin; otherwise 'valid' or why not */
export type CertStatus = 'none' | 'valid' | VerifyError['reason']

export interface PoolSummary {
  poolId: string
  shortId: string
  name: string
  role: PoolRecord['role']
  state: PoolRecord['state']
  rootPublicKey: string
  certificate: { status: CertStatus, serial: string, nodeId: string, roles: string[], notBefore: string, notAfter: string } | null
  revocationSequence: number
  revokedNodeIds: string[]
  /** admin only */
  policy?: string
  members?: Array<{ nodeId: string, name: string, roles: string[], serial: string, notAfter: string }>
  pending?: Array<{ nodeId: string, name: string, receivedAt: string }>
}

export function summarizePool (r: PoolRecord, now: number): PoolSummary {
  const cert = recordCert(r)
  let status: CertStatus = 'none'
  if (cert !== undefined) {
    try {
      verifyMemberCert(cert, poolTrust(r), now)
      status = 'valid'
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err
      status = err.reason
    }
  }
  const revocation = recordRevocation(r)
  const iso = (t: number): string => new Date(t).toISOString()
  const summary: PoolSummary = {
    poolId: r.poolId,
    shortId: shortPoolId(r.poolId),
    name: r.name,
    role: r.role,
    state: r.state,
    rootPublicKey: r.rootPublicKey,
    certificate: cert === undefined
      ? null
      : { status, serial: cert.serial, nodeId: cert.nodeId, roles: [...cert.roles], notBefore: iso(cert.notBefore), notAfter: iso(cert.notAfter) },
    revocationSequence: revocation?.sequence ?? 0,
    revokedNodeIds: [...(revocation?.nodeIds ?? [])]
  }
  if (r.role === 'admin') {
    summary.policy = r.policy
    summary.members = r.members.map(m => ({ nodeId: m.nodeId, name: m.name, roles: m.roles, serial: m.serial, notAfter: iso(m.notAfter) }))
    summary.pending = r.pending.map(p => ({ nodeId: p.nodeId, name: p.name, receivedAt: iso(p.receivedAt) }))
  }
  return summary
}
