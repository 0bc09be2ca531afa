/**
 * Pool records on disk: MESH_HOME/pools/<poolId>.json, zod-validated, written atomically. The CLI and
 * the agent both write them, so every change is a small read-modify-write under a lock file
 * (`updatePoolRecord`). A corrupt or hand-edited record is a CorruptFileError naming the file, never reset.
 *
 * Exports: PoolRecord, AdminPoolRecord, MemberPoolRecord, MemberEntry, PendingEntry, PoolState,
 * readPoolRecord, listPoolRecords, writeNewPoolRecord, updatePoolRecord, resolvePoolId,
 * recordBytes, poolTrust, recordCert, recordRevocation, readRootKey, PoolBusyError.
 */
import fs from 'node:fs'
import { z } from 'zod'
import { CorruptFileError, StateWriteError, readJsonFile, writeJsonAtomic } from '../atomic-file.js'
import { decodeMemberCert, verifyMemberCert, type MemberCert, type PoolTrust } from './cert.js'
import { MalformedError, PoolError, PoolExistsError, UnknownPoolError, VerifyError } from './errors.js'
import { describeZod } from './identity.js'
import { publicKeyOf, readKeyFile } from './keys.js'
import { listPoolIds, poolFile, rootKeyFile } from './paths.js'
import { derivePoolId, matchPoolId } from './pool-id.js'
import { POLICIES } from './policy.js'
import { decodeRevocationList, verifyRevocationList, type RevocationList } from './revocation.js'
import { decodeCertRequest } from './cert-request.js'
import { fromBase64Url, fromHex } from './encoding.js'

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits')
const B64 = z.string().regex(/^[A-Za-z0-9_-]+$/, 'expected base64url')
const NodeId = z.string().min(1).max(100)
const Time = z.number().int().nonnegative()

const MemberEntry = z.object({
  nodeId: NodeId,
  name: z.string(),
  roles: z.array(z.enum(['admin', 'member'])),
  serial: z.string().regex(/^[0-9a-f]{16}$/),
  notAfter: Time,
  /** the latest certificate issued to it, base64url, so the agent can resend it */
  certificate: B64
}).strict()
export type MemberEntry = z.infer<typeof MemberEntry>

const PendingEntry = z.object({
  nodeId: NodeId,
  name: z.string(),
  /** the signed request, base64url; `pool-approve` signs a certificate from it */
  request: B64,
  receivedAt: Time
}).strict()
export type PendingEntry = z.infer<typeof PendingEntry>

const PoolKeyEntry = z.object({
  hash: Hex64,
  name: z.string().max(64),
  reusable: z.boolean(),
  createdAt: Time,
  expiresAt: Time,
  revokedAt: Time.nullable(),
  uses: z.array(z.object({ nodeId: NodeId, at: Time }).strict())
}).strict()

const Common = {
  version: z.literal(1),
  poolId: Hex64,
  /** a local label: the admin's --name at pool-create, a member's at pool-join */
  name: z.string(),
  rootPublicKey: Hex64,
  /** newest verified revocation list, base64url */
  revocation: B64.nullable()
}

const AdminPoolRecord = z.object({
  ...Common,
  role: z.literal('admin'),
  state: z.literal('member'),
  certificate: B64,
  policy: z.enum(POLICIES),
  joinToken: z.string(),
  /** pre-authorised join keys (`mesh pool-key`), by hash only; records from before them have none */
  poolKeys: z.array(PoolKeyEntry).default([]),
  members: z.array(MemberEntry),
  pending: z.array(PendingEntry),
  rejectedNodeIds: z.array(NodeId),
  createdAt: z.string()
}).strict()

const MemberPoolRecord = z.object({
  ...Common,
  role: z.literal('member'),
  state: z.enum(['pending-certificate', 'member']),
  certificate: B64.nullable(),
  /** the token given at pool-join, proved in certificate requests */
  joinToken: z.string().nullable(),
  joinedAt: z.string()
}).strict()

const PoolRecordSchema = z.discriminatedUnion('role', [AdminPoolRecord, MemberPoolRecord])
export type AdminPoolRecord = z.infer<typeof AdminPoolRecord>
export type MemberPoolRecord = z.infer<typeof MemberPoolRecord>
export type PoolRecord = AdminPoolRecord | MemberPoolRecord
export type PoolState = PoolRecord['state']

/** Another process held the pool's lock for too long. */
export class PoolBusyError extends PoolError {}

/** Bytes of a base64url field of a record; MalformedError (→ CorruptFileError on read) if not canonical. */
export function recordBytes (text: string, field: string): Uint8Array {
  const b = fromBase64Url(text)
  if (b === undefined) throw new MalformedError(field, 'not canonical base64url')
  return b
}

export function poolTrust (r: PoolRecord): PoolTrust {
  return { poolId: r.poolId, rootPublicKey: fromHex(r.rootPublicKey, 32) as Uint8Array, revocation: recordRevocation(r) }
}

/** The record's own certificate, decoded (checked when the record was read). */
export function recordCert (r: PoolRecord): MemberCert | undefined {
  return r.certificate === null ? undefined : decodeMemberCert(recordBytes(r.certificate, 'certificate'))
}

export function recordRevocation (r: PoolRecord): RevocationList | undefined {
  return r.revocation === null ? undefined : decodeRevocationList(recordBytes(r.revocation, 'revocation'))
}

/** Beyond the schema: the id matches key and file name, and the signed parts are intact. */
function checkRecord (r: PoolRecord, file: string, poolId: string): void {
  const bad = (problem: string): never => { throw new CorruptFileError(file, problem) }
  if (r.poolId !== poolId) bad('poolId does not match the file name')
  const root = fromHex(r.rootPublicKey, 32) as Uint8Array
  if (derivePoolId(root) !== r.poolId) bad('rootPublicKey does not match poolId')
  try {
    const revocation = recordRevocation(r)
    if (revocation !== undefined) verifyRevocationList(revocation, { poolId, rootPublicKey: root })
    const cert = recordCert(r)
    // expiry is the status commands' business, not corruption
    if (cert !== undefined) verifyMemberCert(cert, { poolId, rootPublicKey: root }, cert.notBefore)
    if (r.role === 'admin') {
      for (const m of r.members) decodeMemberCert(recordBytes(m.certificate, 'member certificate'))
      for (const p of r.pending) decodeCertRequest(recordBytes(p.request, 'pending request'))
    }
  } catch (err) {
    if (err instanceof VerifyError) bad(err.message)
    throw err
  }
}

/** The record of `poolId` (full id); UnknownPoolError if none, CorruptFileError if unusable. */
export function readPoolRecord (home: string, poolId: string): PoolRecord {
  const file = poolFile(home, poolId)
  const raw = readJsonFile(file)
  if (raw === undefined) throw new UnknownPoolError(poolId)
  const parsed = PoolRecordSchema.safeParse(raw)
  if (!parsed.success) throw new CorruptFileError(file, describeZod(parsed.error))
  checkRecord(parsed.data, file, poolId)
  return parsed.data
}

export function listPoolRecords (home: string): PoolRecord[] {
  return listPoolIds(home).map(id => readPoolRecord(home, id))
}

/** The full id of the one pool on disk matching a typed Pool ID or prefix (≥ 16 hex digits). */
export function resolvePoolId (home: string, typed: string): string {
  return matchPoolId(typed, listPoolIds(home))
}

/** Write a record for a pool this device does not have yet. */
export function writeNewPoolRecord (home: string, record: PoolRecord): void {
  const file = poolFile(home, record.poolId)
  if (fs.existsSync(file)) throw new PoolExistsError(`pool ${record.poolId.slice(0, 16)} is already on this device; see \`mesh pool-status\``)
  writeJsonAtomic(file, PoolRecordSchema.parse(record), RECORD_MODE)
}

/** records hold join tokens: readable by this user only */
const RECORD_MODE = 0o600

const LOCK_WAIT_MS = 5000
/** a lock older than this was left by a crashed process */
const LOCK_STALE_MS = 10_000

function sleepSync (ms: number): void { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms) }

function withLock<T> (file: string, fn: () => T): T {
  const lock = `${file}.lock`
  const deadline = Date.now() + LOCK_WAIT_MS
  for (;;) {
    try {
      fs.closeSync(fs.openSync(lock, 'wx', 0o600))
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StateWriteError(lock, err)
    }
    try {
      if (Date.now() - fs.statSync(lock).mtimeMs > LOCK_STALE_MS) { fs.rmSync(lock, { force: true }); continue }
    } catch { continue } // released meanwhile
    if (Date.now() > deadline) throw new PoolBusyError(`${file} is locked by another mesh process (${lock}); try again, or remove the lock file if no mesh process runs`)
    sleepSync(10)
  }
  try { return fn() } finally { fs.rmSync(lock, { force: true }) }
}

/**
 * Read, change and write one record under its lock. `change` returns the new record (or the same
 * object to write nothing) and must not do I/O; whatever it throws propagates with nothing written.
 */
export function updatePoolRecord<R extends PoolRecord> (home: string, poolId: string, change: (r: PoolRecord) => R): R {
  const file = poolFile(home, poolId)
  return withLock(file, () => {
    const before = readPoolRecord(home, poolId)
    const after = change(before)
    if (after !== before) writeJsonAtomic(file, PoolRecordSchema.parse(after), RECORD_MODE)
    return after
  })
}

/** The root private seed of an admin pool; CorruptFileError if missing or not the pool's key. */
export function readRootKey (home: string, r: PoolRecord): Uint8Array {
  const file = rootKeyFile(home, r.poolId)
  const seed = readKeyFile(file)
  if (seed === undefined) throw new CorruptFileError(file, `it is missing, but this device is the admin of pool ${r.poolId.slice(0, 16)}`)
  if (derivePoolId(publicKeyOf(seed)) !== r.poolId) throw new CorruptFileError(file, 'it is not the root key of this pool')
  return seed
}
