/**
 * What the admin device of a pool does: create it, decide certificate requests, approve or reject
 * pending ones, change the policy, revoke members. Each is one locked read-modify-write of the pool
 * record (store.ts); the decisions themselves are the pure functions of cert-request.ts.
 *
 * Exports: CreatedPool, createPool, requestContext, RequestOutcome, handleCertRequest, approvePending,
 * rejectPending, setPoolPolicy, revokeNode, MAX_PENDING, adminPool, CreatedPoolKey, createPoolKey, revokePoolKey.
 */
import fs from 'node:fs'
import { newSerial, signMemberCert, type MemberCert } from './cert.js'
import { certForRequest, decideCertRequest, decodeCertRequest, type CertDecision, type CertRequestContext, type RefuseReason } from './cert-request.js'
import { toBase64Url, toHex } from './encoding.js'
import { AmbiguousPoolIdError, InvalidInputError, NotPoolAdminError, UnknownNodeError } from './errors.js'
import { loadDevice, parseName, publicKeyFromNodeId } from './identity.js'
import { keyId, newSeed, publicKeyOf, writeKeyFile } from './keys.js'
import { listPoolIds, rootKeyFile } from './paths.js'
import { derivePoolId } from './pool-id.js'
import { CLOCK_SKEW_MS, DEFAULT_CERT_LIFETIME_MS, newJoinToken, type PoolPolicy } from './policy.js'
import {
  isPoolKeyText, newPoolKey, parsePoolKey, poolKeyHash, poolKeyId, poolKeyPublicKey, poolKeyState, prunePoolKeys, spendPoolKey, type PoolKeyEntry
} from './pool-keys.js'
import { signRevocationList, type RevocationList } from './revocation.js'
import {
  readPoolRecord, readRootKey, recordBytes, recordRevocation, resolvePoolId, updatePoolRecord, writeNewPoolRecord,
  type AdminPoolRecord, type MemberEntry, type PoolRecord
} from './store.js'

/** pending requests kept per pool; the oldest are dropped beyond it, so a flood cannot grow the file */
export const MAX_PENDING = 64

export interface CreatedPool { record: AdminPoolRecord, rootPublicKey: string, joinToken: string }

function memberEntry (cert: MemberCert): MemberEntry {
  return { nodeId: cert.nodeId, name: cert.name, roles: [...cert.roles], serial: cert.serial, notAfter: cert.notAfter, certificate: toBase64Url(cert.bytes) }
}

/** Make a root key and a pool with this device as its admin (and first member). */
export function createPool (home: string, opts: { name: string, policy: PoolPolicy, now: number }): CreatedPool {
  const name = parseName(opts.name, 'pool name')
  const device = loadDevice(home)
  const rootSeed = newSeed()
  const rootPublicKey = publicKeyOf(rootSeed)
  const poolId = derivePoolId(rootPublicKey)
  const cert = signMemberCert({
    version: 1,
    poolId,
    nodeId: device.nodeId,
    devicePublicKey: device.publicKey,
    name: device.name,
    roles: ['admin', 'member'],
    serial: newSerial(),
    notBefore: Math.max(0, opts.now - CLOCK_SKEW_MS),
    notAfter: opts.now + DEFAULT_CERT_LIFETIME_MS,
    issuerKeyId: keyId(rootPublicKey)
  }, rootSeed)
  const joinToken = newJoinToken()
  const record: AdminPoolRecord = {
    version: 1,
    poolId,
    name,
    rootPublicKey: toHex(rootPublicKey),
    revocation: null,
    role: 'admin',
    state: 'member',
    certificate: toBase64Url(cert.bytes),
    policy: opts.policy,
    joinToken,
    poolKeys: [],
    members: [memberEntry(cert)],
    pending: [],
    rejectedNodeIds: [],
    createdAt: new Date(opts.now).toISOString()
  }
  const keyFile = rootKeyFile(home, poolId)
  writeKeyFile(keyFile, rootSeed)
  try {
    // the record is the commit: without it, the key file is removed again
    writeNewPoolRecord(home, record)
  } catch (err) {
    fs.rmSync(keyFile, { force: true })
    throw err
  }
  return { record, rootPublicKey: toHex(rootPublicKey), joinToken }
}

function asAdmin (r: PoolRecord): AdminPoolRecord {
  if (r.role !== 'admin') throw new NotPoolAdminError(`this device is not the admin of pool ${r.poolId.slice(0, 16)}; run the command on the device that created it`)
  return r
}

/** The decision inputs of an admin pool. */
export function requestContext (r: AdminPoolRecord, rootPrivateKey: Uint8Array): CertRequestContext {
  const revocation = recordRevocation(r)
  return {
    poolId: r.poolId,
    rootPrivateKey,
    rootPublicKey: publicKeyOf(rootPrivateKey),
    policy: r.policy,
    joinToken: r.joinToken,
    poolKeys: r.poolKeys,
    revocation,
    memberNodeIds: new Set(r.members.map(m => m.nodeId)),
    rejectedNodeIds: new Set(r.rejectedNodeIds)
  }
}

/** refusals that still leave the request in the pending list for `mesh pool-approve` */
const APPROVABLE_REFUSALS: ReadonlySet<RefuseReason> = new Set(['missing-token', 'bad-token'])

export interface RequestOutcome { poolId: string, decision: CertDecision }

/**
 * The admin agent's handler for a certificate request from the network: decode strictly, decide by
 * policy, and record the issued member or the pending request. Throws MalformedError for bad bytes,
 * UnknownPoolError / NotPoolAdminError for requests this device cannot decide.
 */
export function handleCertRequest (home: string, requestBytes: Uint8Array, now: number): RequestOutcome {
  const req = decodeCertRequest(requestBytes)
  const rootKey = readRootKey(home, asAdmin(readPoolRecord(home, req.poolId)))
  let decision: CertDecision = { kind: 'pending' }
  updatePoolRecord(home, req.poolId, current => {
    const r = asAdmin(current)
    const d = decideCertRequest(req, requestContext(r, rootKey), now)
    decision = d
    if (d.kind === 'issue') {
      // a pool key is spent in the same write that records the member, so two requests cannot both use it
      const poolKeys = d.poolKey === undefined ? r.poolKeys : spendPoolKey(r.poolKeys, d.poolKey, req.nodeId, now)
      return { ...r, poolKeys, members: upsertMember(r.members, d.cert), pending: r.pending.filter(p => p.nodeId !== req.nodeId) }
    }
    // a missing or wrong token is refused, but the admin may still vouch for the device with pool-approve
    if (d.kind === 'refuse' && !APPROVABLE_REFUSALS.has(d.reason)) return r
    const entry = { nodeId: req.nodeId, name: req.name, request: toBase64Url(req.bytes), receivedAt: now }
    return { ...r, pending: [...r.pending.filter(p => p.nodeId !== req.nodeId), entry].slice(-MAX_PENDING) }
  })
  return { poolId: req.poolId, decision }
}

function upsertMember (members: readonly MemberEntry[], cert: MemberCert): MemberEntry[] {
  return [...members.filter(m => m.nodeId !== cert.nodeId), memberEntry(cert)]
}

/** The admin pool to act on: the one typed, or the only admin pool that `matches`. */
function pickAdminPool (home: string, poolIdText: string | undefined, matches: (r: AdminPoolRecord) => boolean, what: string): AdminPoolRecord {
  if (poolIdText !== undefined) return asAdmin(readPoolRecord(home, resolvePoolId(home, poolIdText)))
  const admin = listPoolIds(home).map(id => readPoolRecord(home, id)).filter((r): r is AdminPoolRecord => r.role === 'admin')
  if (admin.length === 0) throw new NotPoolAdminError('this device is not the admin of any pool; create one with `mesh pool-create`')
  const hits = admin.filter(matches)
  if (hits.length === 1) return hits[0] as AdminPoolRecord
  if (hits.length === 0) throw new UnknownNodeError(`${what} in any pool this device administers; see \`mesh pool-status\``)
  throw new AmbiguousPoolIdError(`${what.replace(/^no /, '')} in ${hits.length} pools; say which with --pool-id`)
}

function findPending (r: AdminPoolRecord, nodeId: string): boolean { return r.pending.some(p => p.nodeId === nodeId) }

/** `mesh pool-approve NODE`: sign the pending request of NODE. */
export function approvePending (home: string, nodeId: string, poolIdText: string | undefined, now: number): MemberCert {
  loadDevice(home) // before init, say so rather than "no pool"
  const pool = pickAdminPool(home, poolIdText, r => findPending(r, nodeId), `no pending request from ${nodeId}`)
  const rootKey = readRootKey(home, pool)
  let cert: MemberCert | undefined
  updatePoolRecord(home, pool.poolId, current => {
    const r = asAdmin(current)
    const entry = r.pending.find(p => p.nodeId === nodeId)
    if (entry === undefined) throw new UnknownNodeError(`no pending request from ${nodeId} in pool ${r.poolId.slice(0, 16)}; see \`mesh pool-status\``)
    const req = decodeCertRequest(recordBytes(entry.request, 'pending request'))
    cert = certForRequest(req, requestContext(r, rootKey), now)
    return {
      ...r,
      members: upsertMember(r.members, cert),
      pending: r.pending.filter(p => p.nodeId !== nodeId),
      rejectedNodeIds: r.rejectedNodeIds.filter(n => n !== nodeId)
    }
  })
  return cert as MemberCert
}

/** `mesh pool-reject NODE`: drop the pending request; later requests from NODE are refused. */
export function rejectPending (home: string, nodeId: string, poolIdText: string | undefined): AdminPoolRecord {
  loadDevice(home)
  const pool = pickAdminPool(home, poolIdText, r => findPending(r, nodeId), `no pending request from ${nodeId}`)
  return updatePoolRecord(home, pool.poolId, current => {
    const r = asAdmin(current)
    if (!findPending(r, nodeId)) throw new UnknownNodeError(`no pending request from ${nodeId} in pool ${r.poolId.slice(0, 16)}; see \`mesh pool-status\``)
    return { ...r, pending: r.pending.filter(p => p.nodeId !== nodeId), rejectedNodeIds: [...new Set([...r.rejectedNodeIds, nodeId])] }
  })
}

/** `mesh pool-policy`: change how requests are decided. */
export function setPoolPolicy (home: string, poolIdText: string, policy: PoolPolicy): AdminPoolRecord {
  loadDevice(home)
  const poolId = resolvePoolId(home, poolIdText)
  return updatePoolRecord(home, poolId, current => {
    const r = asAdmin(current)
    return r.policy === policy ? r : { ...r, policy }
  })
}

/**
 * `mesh pool-revoke NODE`: a new root-signed revocation list (sequence + 1) naming NODE and the serials
 * of its certificates; NODE leaves the member and pending lists. The ring spreads the list.
 */
export function revokeNode (home: string, nodeId: string, poolIdText: string | undefined, now: number): RevocationList {
  publicKeyFromNodeId(nodeId) // a malformed node id is a usage error before any lookup
  const device = loadDevice(home)
  if (nodeId === device.nodeId) throw new InvalidInputError('refusing to revoke this device, the pool admin; revoke other members only')
  const pool = pickAdminPool(home, poolIdText, r => r.members.some(m => m.nodeId === nodeId) || findPending(r, nodeId), `no member ${nodeId}`)
  const rootKey = readRootKey(home, pool)
  let list: RevocationList | undefined
  updatePoolRecord(home, pool.poolId, current => {
    const r = asAdmin(current)
    const held = recordRevocation(r)
    if (held?.nodeIds.includes(nodeId) === true) throw new InvalidInputError(`node ${nodeId} is already revoked in pool ${r.poolId.slice(0, 16)}`)
    const serials = r.members.filter(m => m.nodeId === nodeId).map(m => m.serial)
    list = signRevocationList({
      version: 1,
      poolId: r.poolId,
      issuerKeyId: keyId(publicKeyOf(rootKey)),
      sequence: (held?.sequence ?? 0) + 1,
      issuedAt: now,
      serials: [...(held?.serials ?? []), ...serials],
      nodeIds: [...(held?.nodeIds ?? []), nodeId]
    }, rootKey)
    return {
      ...r,
      revocation: toBase64Url(list.bytes),
      members: r.members.filter(m => m.nodeId !== nodeId),
      pending: r.pending.filter(p => p.nodeId !== nodeId)
    }
  })
  return list as RevocationList
}

/** The admin pool a command names with --pool-id, or the only one this device administers. */
export function adminPool (home: string, poolIdText: string | undefined): AdminPoolRecord {
  loadDevice(home)
  if (poolIdText !== undefined) return asAdmin(readPoolRecord(home, resolvePoolId(home, poolIdText)))
  const admin = listPoolIds(home).map(id => readPoolRecord(home, id)).filter((r): r is AdminPoolRecord => r.role === 'admin')
  if (admin.length === 1) return admin[0] as AdminPoolRecord
  if (admin.length === 0) throw new NotPoolAdminError('this device is not the admin of any pool; create one with `mesh pool-create`')
  throw new AmbiguousPoolIdError(`this device administers ${admin.length} pools; say which with --pool-id`)
}

export interface CreatedPoolKey { poolId: string, key: string, entry: PoolKeyEntry }

/** `mesh pool-key create`: a new key, recorded by its hash only; the text is returned once. */
export function createPoolKey (home: string, opts: { poolId?: string | undefined, name: string, reusable: boolean, ttlMs: number, now: number }): CreatedPoolKey {
  const name = opts.name === '' ? '' : parseName(opts.name, 'key name')
  const pool = adminPool(home, opts.poolId)
  const key = newPoolKey()
  const entry: PoolKeyEntry = {
    hash: poolKeyHash(poolKeyPublicKey(parsePoolKey(key))),
    name,
    reusable: opts.reusable,
    createdAt: opts.now,
    expiresAt: opts.now + opts.ttlMs,
    revokedAt: null,
    uses: []
  }
  updatePoolRecord(home, pool.poolId, current => {
    const r = asAdmin(current)
    return { ...r, poolKeys: [...prunePoolKeys(r.poolKeys, opts.now), entry] }
  })
  return { poolId: pool.poolId, key, entry }
}

/**
 * `mesh pool-key revoke KEY`: KEY is the id `pool-key list` shows (or a longer prefix of the hash),
 * the name it was made with, or the key text itself. A key already revoked is refused.
 */
export function revokePoolKey (home: string, poolIdText: string | undefined, which: string, now: number): { poolId: string, entry: PoolKeyEntry } {
  const pool = adminPool(home, poolIdText)
  const text = which.trim()
  const byKey = isPoolKeyText(text) ? poolKeyHash(poolKeyPublicKey(parsePoolKey(text))) : undefined
  const match = (k: PoolKeyEntry): boolean => {
    if (byKey !== undefined) return k.hash === byKey
    return (/^[0-9a-f]{12,64}$/.test(text) && k.hash.startsWith(text)) || (k.name !== '' && k.name === text)
  }
  let revoked: PoolKeyEntry | undefined
  updatePoolRecord(home, pool.poolId, current => {
    const r = asAdmin(current)
    const hits = r.poolKeys.filter(match)
    if (hits.length === 0) throw new InvalidInputError(`no pool key ${JSON.stringify(text.slice(0, 20))} in pool ${r.poolId.slice(0, 16)}; see \`mesh pool-key list\``)
    if (hits.length > 1) throw new InvalidInputError(`${hits.length} pool keys are named ${JSON.stringify(text)}; revoke by the id \`mesh pool-key list\` shows`)
    const hit = hits[0] as PoolKeyEntry
    if (poolKeyState(hit, now) === 'revoked') throw new InvalidInputError(`pool key ${poolKeyId(hit)} is already revoked`)
    revoked = { ...hit, revokedAt: now }
    return { ...r, poolKeys: r.poolKeys.map(k => k === hit ? revoked as PoolKeyEntry : k) }
  })
  return { poolId: pool.poolId, entry: revoked as PoolKeyEntry }
}
