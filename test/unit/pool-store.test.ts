import fs from 'node:fs'
import path from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { CorruptFileError, StateWriteError } from '../../src/atomic-file.js'
import { approvePending, createPool, handleCertRequest, rejectPending, revokeNode, setPoolPolicy } from '../../src/pool/admin.js'
import { decodeMemberCert, signMemberCert } from '../../src/pool/cert.js'
import { certForRequest } from '../../src/pool/cert-request.js'
import { fromHex } from '../../src/pool/encoding.js'
import {
  AlreadyInitializedError, AmbiguousPoolIdError, BadSignatureError, ExpiredError, MalformedError, NotYetValidError, UnknownIssuerError, WrongPoolError, NotInitializedError, NotPoolAdminError, PoolExistsError,
  PoolIdMismatchError, RevokedError, StaleRevocationError, UnknownNodeError, UnknownPoolError, WrongNodeError
} from '../../src/pool/errors.js'
import { initDevice, libp2pPrivateKey, loadDevice } from '../../src/pool/identity.js'
import { acceptCertificate, acceptRevocationList, certRequestFor, joinPool } from '../../src/pool/member.js'
import { configFile, deviceKeyFile, poolFile, rootKeyFile } from '../../src/pool/paths.js'
import { summarizePool } from '../../src/pool/status.js'
import { listPoolRecords, readPoolRecord, readRootKey, recordRevocation, resolvePoolId, updatePoolRecord } from '../../src/pool/store.js'
import { DAY, T0, snapshot, tempDirs } from '../helpers/pool-fixtures.js'

const tmp = tempDirs('mesh-pool-')
const ROOT_PUB_OF = (home: string, poolId: string): Uint8Array => fromHex(readPoolRecord(home, poolId).rootPublicKey, 32) as Uint8Array

function twoDevices (): { admin: string, member: string } {
  const admin = tmp(); const member = tmp()
  initDevice(admin, { networkId: 'lan', name: 'admin-box' })
  initDevice(member, { networkId: 'lan', name: 'member-box' })
  return { admin, member }
}

describe('device identity', () => {
  it('creates a 0600 key whose libp2p identity is the node id', () => {
    const home = tmp()
    const d = initDevice(home, { networkId: 'lan', name: 'box' })
    expect(fs.statSync(deviceKeyFile(home)).mode & 0o777).toBe(0o600)
    expect(fs.statSync(path.dirname(deviceKeyFile(home))).mode & 0o777).toBe(0o700)
    const loaded = loadDevice(home)
    expect(loaded.nodeId).toBe(d.nodeId)
    expect(d.nodeId).toMatch(/^12D3KooW/)
    expect(peerIdFromPrivateKey(libp2pPrivateKey(loaded)).toString()).toBe(d.nodeId)
  })
  it('refuses to re-init without --force, and with --force while pools depend on the key', () => {
    const home = tmp()
    const d = initDevice(home, { networkId: 'lan', name: 'box' })
    expect(() => initDevice(home, { networkId: 'lan', name: 'box' })).toThrow(AlreadyInitializedError)
    const { record } = createPool(home, { name: 'p', policy: 'token', now: T0 })
    const before = snapshot(home)
    expect(() => initDevice(home, { networkId: 'lan', name: 'box', force: true })).toThrow(record.poolId.slice(0, 16))
    expect(snapshot(home)).toEqual(before)
    expect(loadDevice(home).nodeId).toBe(d.nodeId)
  })
  it('--force replaces a key no pool depends on', () => {
    const home = tmp()
    const d = initDevice(home, { networkId: 'lan', name: 'box' })
    expect(initDevice(home, { networkId: 'lan2', name: 'box2', force: true }).nodeId).not.toBe(d.nodeId)
  })
  it('reports a missing identity and corrupt or mismatched files by name', () => {
    const home = tmp()
    expect(() => loadDevice(home)).toThrow(NotInitializedError)
    initDevice(home, { networkId: 'lan', name: 'box' })
    const key = fs.readFileSync(deviceKeyFile(home), 'utf8')
    fs.writeFileSync(deviceKeyFile(home), key.slice(0, 40))
    expect(() => loadDevice(home)).toThrow(CorruptFileError)
    fs.writeFileSync(deviceKeyFile(home), key.replace(/"seed": "(.)/, (_m, c: string) => `"seed": "${c === 'a' ? 'b' : 'a'}`))
    expect(() => loadDevice(home)).toThrow(/nodeId does not match/)
    fs.writeFileSync(deviceKeyFile(home), key)
    fs.writeFileSync(configFile(home), '{"version":1}')
    expect(() => loadDevice(home)).toThrow(configFile(home))
  })
  it('an unwritable home gives a StateWriteError and writes nothing', () => {
    const file = path.join(tmp(), 'a-file')
    fs.writeFileSync(file, 'x')
    expect(() => initDevice(path.join(file, 'home'), { networkId: 'lan', name: 'box' })).toThrow(StateWriteError)
  })
})

describe('pools on disk', () => {
  it('create: admin record with its own admin certificate and a 0600 root key', () => {
    const home = tmp()
    const d = initDevice(home, { networkId: 'lan', name: 'box' })
    const created = createPool(home, { name: 'office', policy: 'token', now: T0 })
    expect(fs.statSync(rootKeyFile(home, created.record.poolId)).mode & 0o777).toBe(0o600)
    const s = summarizePool(readPoolRecord(home, created.record.poolId), T0)
    expect(s).toMatchObject({ name: 'office', role: 'admin', state: 'member', policy: 'token', certificate: { status: 'valid', nodeId: d.nodeId, roles: ['admin', 'member'] } })
    expect(summarizePool(readPoolRecord(home, created.record.poolId), T0 + 31 * DAY).certificate?.status).toBe('expired')
    expect(resolvePoolId(home, created.record.poolId.slice(0, 16))).toBe(created.record.poolId)
  })
  it('join: checks id against key, refuses twice, records pending', () => {
    const { admin, member } = twoDevices()
    const { record, rootPublicKey, joinToken } = createPool(admin, { name: 'office', policy: 'token', now: T0 })
    const before = snapshot(member)
    expect(() => joinPool(member, { poolId: 'ab'.repeat(32), rootPublicKey, name: 'office', now: T0 })).toThrow(PoolIdMismatchError)
    expect(snapshot(member)).toEqual(before)
    const joined = joinPool(member, { poolId: record.poolId.slice(0, 20), rootPublicKey, name: 'office', token: joinToken, now: T0 })
    expect(joined).toMatchObject({ poolId: record.poolId, state: 'pending-certificate', certificate: null })
    expect(() => joinPool(member, { poolId: record.poolId, rootPublicKey, name: 'office', now: T0 })).toThrow(PoolExistsError)
    expect(() => joinPool(tmp(), { poolId: record.poolId, rootPublicKey, name: 'office', now: T0 })).toThrow(NotInitializedError)
  })
  it('corrupt, truncated or hand-edited records are named, never reset', () => {
    const home = tmp()
    initDevice(home, { networkId: 'lan', name: 'box' })
    const { record } = createPool(home, { name: 'office', policy: 'token', now: T0 })
    const file = poolFile(home, record.poolId)
    const good = fs.readFileSync(file, 'utf8')
    const edits: Array<(j: Record<string, unknown>) => void> = [
      j => { j.policy = 'everyone' },
      j => { j.rootPublicKey = '00'.repeat(32) },
      j => { const c = Buffer.from(j.certificate as string, 'base64url'); c[70] = (c[70] as number) ^ 1; j.certificate = c.toString('base64url') },
      j => { j.certificate = 'AAAA' },
      j => { j.extra = 1 }
    ]
    for (const edit of edits) {
      const j = JSON.parse(good) as Record<string, unknown>
      edit(j)
      fs.writeFileSync(file, JSON.stringify(j))
      expect(() => readPoolRecord(home, record.poolId)).toThrow(CorruptFileError)
      expect(() => listPoolRecords(home)).toThrow(file)
    }
    fs.writeFileSync(file, good.slice(0, good.length / 2))
    expect(() => readPoolRecord(home, record.poolId)).toThrow(/not valid JSON/)
    expect(fs.readFileSync(file, 'utf8')).toBe(good.slice(0, good.length / 2))
  })
  it('unknown and ambiguous ids', () => {
    const home = tmp()
    initDevice(home, { networkId: 'lan', name: 'box' })
    expect(() => resolvePoolId(home, '0'.repeat(16))).toThrow(UnknownPoolError)
    expect(() => readPoolRecord(home, '0'.repeat(64))).toThrow(UnknownPoolError)
    createPool(home, { name: 'a', policy: 'token', now: T0 })
    createPool(home, { name: 'b', policy: 'token', now: T0 })
    expect(() => approvePending(home, 'x', undefined, T0)).toThrow(UnknownNodeError)
  })
  it('a failed change writes nothing; a stale lock is taken over', () => {
    const home = tmp()
    initDevice(home, { networkId: 'lan', name: 'box' })
    const { record } = createPool(home, { name: 'a', policy: 'token', now: T0 })
    const before = snapshot(home)
    expect(() => updatePoolRecord(home, record.poolId, () => { throw new UnknownNodeError('no') })).toThrow(UnknownNodeError)
    expect(snapshot(home)).toEqual(before)
    const lock = poolFile(home, record.poolId) + '.lock'
    fs.writeFileSync(lock, '')
    const old = new Date(Date.now() - 60_000)
    fs.utimesSync(lock, old, old)
    expect(setPoolPolicy(home, record.poolId, 'manual').policy).toBe('manual')
    expect(fs.existsSync(lock)).toBe(false)
  })
})

describe('join flow between an admin and a member home', () => {
  it('token policy: request → certificate → member', () => {
    const { admin, member } = twoDevices()
    const { record, rootPublicKey, joinToken } = createPool(admin, { name: 'office', policy: 'token', now: T0 })
    joinPool(member, { poolId: record.poolId, rootPublicKey, name: 'office', token: joinToken, now: T0 })
    const out = handleCertRequest(admin, certRequestFor(member, record.poolId, T0).bytes, T0)
    if (out.decision.kind !== 'issue') throw new Error(JSON.stringify(out.decision))
    const cert = acceptCertificate(member, record.poolId, out.decision.cert.bytes, T0)
    expect(cert.nodeId).toBe(loadDevice(member).nodeId)
    expect(readPoolRecord(member, record.poolId).state).toBe('member')
    expect(summarizePool(readPoolRecord(admin, record.poolId), T0).members?.map(m => m.name).sort()).toEqual(['admin-box', 'member-box'])
    // a certificate for another device is refused
    expect(() => acceptCertificate(admin, record.poolId, out.decision.kind === 'issue' ? out.decision.cert.bytes : new Uint8Array(), T0)).toThrow(WrongNodeError)
  })
  it('without the token: refused, no member added, kept pending for pool-approve', () => {
    const { admin, member } = twoDevices()
    const { record, rootPublicKey } = createPool(admin, { name: 'office', policy: 'token', now: T0 })
    joinPool(member, { poolId: record.poolId, rootPublicKey, name: 'office', now: T0 })
    expect(handleCertRequest(admin, certRequestFor(member, record.poolId, T0).bytes, T0).decision).toEqual({ kind: 'refuse', reason: 'missing-token' })
    const after = readPoolRecord(admin, record.poolId)
    if (after.role !== 'admin') throw new Error('admin record expected')
    expect(after.members.map(m => m.name)).toEqual(['admin-box'])
    expect(after.pending.map(p => p.nodeId)).toEqual([loadDevice(member).nodeId])
    expect(approvePending(admin, loadDevice(member).nodeId, record.poolId, T0).nodeId).toBe(loadDevice(member).nodeId)
    expect(() => handleCertRequest(member, certRequestFor(member, record.poolId, T0).bytes, T0)).toThrow(NotPoolAdminError)
  })
  it('manual policy: pending → approve, or reject; then revoke and spread the list', () => {
    const { admin, member } = twoDevices()
    const third = tmp(); initDevice(third, { networkId: 'lan', name: 'third' })
    const { record, rootPublicKey } = createPool(admin, { name: 'office', policy: 'manual', now: T0 })
    const memberId = loadDevice(member).nodeId
    const thirdId = loadDevice(third).nodeId
    for (const h of [member, third]) {
      joinPool(h, { poolId: record.poolId, rootPublicKey, name: 'office', now: T0 })
      expect(handleCertRequest(admin, certRequestFor(h, record.poolId, T0).bytes, T0).decision).toEqual({ kind: 'pending' })
    }
    // a repeated request replaces, not duplicates
    handleCertRequest(admin, certRequestFor(member, record.poolId, T0 + 1).bytes, T0 + 1)
    expect(summarizePool(readPoolRecord(admin, record.poolId), T0).pending?.map(p => p.nodeId).sort()).toEqual([memberId, thirdId].sort())

    const cert = approvePending(admin, memberId, undefined, T0)
    acceptCertificate(member, record.poolId, cert.bytes, T0)
    rejectPending(admin, thirdId, record.poolId.slice(0, 16))
    expect(handleCertRequest(admin, certRequestFor(third, record.poolId, T0).bytes, T0).decision).toEqual({ kind: 'refuse', reason: 'rejected' })
    expect(() => approvePending(admin, thirdId, undefined, T0)).toThrow(UnknownNodeError)

    const list = revokeNode(admin, memberId, undefined, T0)
    expect(list.sequence).toBe(1)
    expect(list.serials).toEqual([cert.serial])
    expect(acceptRevocationList(member, record.poolId, list.bytes).changed).toBe(true)
    expect(acceptRevocationList(member, record.poolId, list.bytes).changed).toBe(false)
    expect(summarizePool(readPoolRecord(member, record.poolId), T0).certificate?.status).toBe('revoked')
    expect(() => acceptCertificate(member, record.poolId, cert.bytes, T0)).toThrow(RevokedError)
    expect(handleCertRequest(admin, certRequestFor(member, record.poolId, T0).bytes, T0).decision).toEqual({ kind: 'refuse', reason: 'revoked' })

    // a newer list, then the old one again: refused as stale
    const list2 = revokeNode(admin, thirdId, record.poolId, T0)
    expect(list2.sequence).toBe(2)
    expect(recordRevocation(readPoolRecord(admin, record.poolId))?.nodeIds.length).toBe(2)
    acceptRevocationList(member, record.poolId, list2.bytes)
    const before = snapshot(member)
    expect(() => acceptRevocationList(member, record.poolId, list.bytes)).toThrow(StaleRevocationError)
    expect(snapshot(member)).toEqual(before)
    expect(decodeMemberCert(cert.bytes).serial).toBe(cert.serial)
  })
  it('a member refuses certificates signed by another key, for another pool, out of date or tampered, and keeps its record', () => {
    const { admin, member } = twoDevices()
    const { record, rootPublicKey, joinToken } = createPool(admin, { name: 'office', policy: 'token', now: T0 })
    const other = createPool(admin, { name: 'other', policy: 'open', now: T0 })
    joinPool(member, { poolId: record.poolId, rootPublicKey, name: 'office', token: joinToken, now: T0 })
    joinPool(member, { poolId: other.record.poolId, rootPublicKey: other.rootPublicKey, name: 'other', now: T0 })
    const device = loadDevice(member)
    const good = certForRequest(certRequestFor(member, record.poolId, T0), { poolId: record.poolId, rootPublicKey: ROOT_PUB_OF(admin, record.poolId), rootPrivateKey: readRootKey(admin, record) }, T0)
    const fromOtherRoot = certForRequest(certRequestFor(member, other.record.poolId, T0), { poolId: other.record.poolId, rootPublicKey: ROOT_PUB_OF(admin, other.record.poolId), rootPrivateKey: readRootKey(admin, other.record) }, T0)
    // the other pool's root signing a certificate that claims this pool
    const forged = signMemberCert({ ...good, issuerKeyId: fromOtherRoot.issuerKeyId }, readRootKey(admin, other.record))
    const tampered = Uint8Array.from(good.bytes); tampered[75] = (tampered[75] as number) ^ 1
    const before = snapshot(member)
    const cases: Array<[Uint8Array, number, new (...a: never[]) => Error]> = [
      [fromOtherRoot.bytes, T0, WrongPoolError],
      [forged.bytes, T0, UnknownIssuerError],
      [Uint8Array.of(...good.signedBytes, ...fromOtherRoot.signature), T0, BadSignatureError],
      [tampered, T0, BadSignatureError],
      [good.bytes, good.notAfter, ExpiredError],
      [good.bytes, good.notBefore - 1, NotYetValidError],
      [good.bytes.subarray(0, 100), T0, MalformedError]
    ]
    for (const [bytes, now, cls] of cases) {
      expect(() => acceptCertificate(member, record.poolId, bytes, now)).toThrow(cls)
      expect(snapshot(member)).toEqual(before)
    }
    expect(acceptCertificate(member, record.poolId, good.bytes, T0).nodeId).toBe(device.nodeId)
    expect(fs.statSync(poolFile(member, record.poolId)).mode & 0o777).toBe(0o600)
  })
  it('approve/reject need --pool-id when the node is pending in two pools', () => {
    const { admin, member } = twoDevices()
    const a = createPool(admin, { name: 'a', policy: 'manual', now: T0 })
    const b = createPool(admin, { name: 'b', policy: 'manual', now: T0 })
    for (const p of [a, b]) {
      joinPool(member, { poolId: p.record.poolId, rootPublicKey: p.rootPublicKey, name: p.record.name, now: T0 })
      handleCertRequest(admin, certRequestFor(member, p.record.poolId, T0).bytes, T0)
    }
    const id = loadDevice(member).nodeId
    expect(() => approvePending(admin, id, undefined, T0)).toThrow(AmbiguousPoolIdError)
    expect(approvePending(admin, id, b.record.poolId, T0).poolId).toBe(b.record.poolId)
  })
})
