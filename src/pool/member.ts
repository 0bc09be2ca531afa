/**
 * What a joining or member device does with its pool records: record a pool at `pool-join`, build the
 * certificate request its agent sends, and accept a certificate or a revocation list that arrives.
 *
 * Exports: JoinOptions, joinPool, certRequestFor, acceptCertificate, acceptRevocationList.
 */
import { expectCertNode, verifyMemberCertBytes, type MemberCert } from './cert.js'
import { createCertRequest, type CertRequest } from './cert-request.js'
import { toBase64Url, toHex } from './encoding.js'
import { PoolIdMismatchError } from './errors.js'
import { loadDevice, parseName } from './identity.js'
import { derivePoolId, parsePoolIdText, parseRootPublicKey } from './pool-id.js'
import { parseJoinToken } from './policy.js'
import { isPoolKeyText, parsePoolKey } from './pool-keys.js'
import { isNewerRevocationList, verifyRevocationListBytes, type RevocationList } from './revocation.js'
import { poolTrust, readPoolRecord, recordCert, recordRevocation, updatePoolRecord, writeNewPoolRecord, type MemberPoolRecord } from './store.js'

export interface JoinOptions {
  /** full Pool ID or a prefix of ≥ 16 hex digits of the id the key gives */
  poolId: string
  /** 64 hex digits */
  rootPublicKey: string
  name: string
  /** the pool's join token, or a pre-authorised pool key (`mesh pool-key create`) */
  token?: string | undefined
  now: number
}

/** `mesh pool-join`: check the id against the key and record the pool as pending its certificate. */
export function joinPool (home: string, opts: JoinOptions): MemberPoolRecord {
  const typedId = parsePoolIdText(opts.poolId)
  const root = parseRootPublicKey(opts.rootPublicKey)
  const name = parseName(opts.name, 'pool name')
  if (opts.token !== undefined) {
    if (isPoolKeyText(opts.token)) parsePoolKey(opts.token)
    else parseJoinToken(opts.token)
  }
  const poolId = derivePoolId(root)
  if (!poolId.startsWith(typedId)) throw new PoolIdMismatchError(typedId, poolId)
  loadDevice(home) // a certificate needs a device identity: fail before writing anything
  const record: MemberPoolRecord = {
    version: 1,
    poolId,
    name,
    rootPublicKey: toHex(root),
    revocation: null,
    role: 'member',
    state: 'pending-certificate',
    certificate: null,
    joinToken: opts.token?.trim() ?? null,
    joinedAt: new Date(opts.now).toISOString()
  }
  writeNewPoolRecord(home, record)
  return record
}

/** The signed request this device's agent multicasts for `poolId` (with the token proof if it has one). */
export function certRequestFor (home: string, poolId: string, now: number): CertRequest {
  const r = readPoolRecord(home, poolId)
  const token = r.role === 'member' ? r.joinToken ?? undefined : r.joinToken
  return createCertRequest(loadDevice(home), poolId, now, token)
}

/**
 * A certificate from the admin: verified against the pool root and the held revocation list, it must
 * name this device; it replaces the held one unless that one lasts longer. Returns the held certificate.
 */
export function acceptCertificate (home: string, poolId: string, certBytes: Uint8Array, now: number): MemberCert {
  const device = loadDevice(home)
  let held: MemberCert | undefined
  updatePoolRecord(home, poolId, r => {
    const cert = verifyMemberCertBytes(certBytes, poolTrust(r), now)
    expectCertNode(cert, device.nodeId)
    const current = recordCert(r)
    if (current !== undefined && current.notAfter >= cert.notAfter) { held = current; return r }
    held = cert
    return { ...r, certificate: toBase64Url(cert.bytes), state: 'member' }
  })
  return held as MemberCert
}

/**
 * A revocation list from the network: verified, and kept if newer than the held one. `changed` is false
 * for the same sequence; an older one throws StaleRevocationError.
 */
export function acceptRevocationList (home: string, poolId: string, bytes: Uint8Array): { list: RevocationList, changed: boolean } {
  let result: { list: RevocationList, changed: boolean } | undefined
  updatePoolRecord(home, poolId, r => {
    const list = verifyRevocationListBytes(bytes, poolTrust(r))
    const held = recordRevocation(r)
    const changed = isNewerRevocationList(held, list)
    result = { list: changed ? list : held as RevocationList, changed }
    return changed ? { ...r, revocation: toBase64Url(list.bytes) } : r
  })
  return result as { list: RevocationList, changed: boolean }
}
