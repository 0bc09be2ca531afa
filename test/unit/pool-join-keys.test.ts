// Pre-authorised pool keys: their text form, validity rules, the proof in certificate requests, the
// admin's decision and record, and `mesh pool-key` through runCli with captured streams.
import { describe, expect, it } from 'vitest'
import { adminPool, createPoolKey, handleCertRequest } from '../../src/pool/admin.js'
import { createCertRequest, decideCertRequest, decodeCertRequest, MAX_CERT_REQUEST_BYTES, type CertRequestContext } from '../../src/pool/cert-request.js'
import { initDevice, loadDevice } from '../../src/pool/identity.js'
import { certRequestFor, joinPool } from '../../src/pool/member.js'
import { seal } from '../../src/pool/keys.js'
import { newJoinToken } from '../../src/pool/policy.js'
import {
  checkPoolKey, newPoolKey, parseKeyTtl, parsePoolKey, poolKeyHash, poolKeyPublicKey, poolKeyState, prunePoolKeys, spendPoolKey, type PoolKeyEntry
} from '../../src/pool/pool-keys.js'
import type { PoolPolicy } from '../../src/pool/policy.js'
import { inProcess, meshFails, meshOk } from '../helpers/mesh-cli.js'
import { DAY, DEVICE, POOL_ID, ROOT_PUB, ROOT_SEED, T0, fixedDevice, homeWithPool, snapshot, tempDirs } from '../helpers/pool-fixtures.js'

const tmp = tempDirs('mesh-poolkey-')
const NONCE = Buffer.alloc(16, 9)
const NODE_A = fixedDevice(5, 'a').nodeId
const NODE_B = fixedDevice(6, 'b').nodeId

function entryOf (key: string, over: Partial<PoolKeyEntry> = {}): PoolKeyEntry {
  return { hash: poolKeyHash(poolKeyPublicKey(parsePoolKey(key))), name: '', reusable: false, createdAt: T0, expiresAt: T0 + DAY, revokedAt: null, uses: [], ...over }
}

function ctx (policy: PoolPolicy, poolKeys: PoolKeyEntry[], over: Partial<CertRequestContext> = {}): CertRequestContext {
  return {
    poolId: POOL_ID, rootPrivateKey: ROOT_SEED, rootPublicKey: ROOT_PUB, policy, joinToken: newJoinToken(), poolKeys,
    memberNodeIds: new Set(), rejectedNodeIds: new Set(), ...over
  }
}

describe('pool key text', () => {
  it('is mpk1_ and 43 base64url characters, never starting with "-", and parses back', () => {
    for (let i = 0; i < 200; i++) {
      const k = newPoolKey()
      expect(k).toMatch(/^mpk1_[A-Za-z0-9_-]{43}$/)
      expect(parsePoolKey(k)).toHaveLength(32)
    }
  })
  it.each(['', 'mpk1_', 'mpk1_abc', newJoinToken(), `mpk1_${'A'.repeat(44)}`, `mpk2_${'A'.repeat(43)}`])('refuses %j on one line', (text) => {
    expect(() => parsePoolKey(text)).toThrow(/^a pool key is mpk1_ and 43 base64url characters/)
  })
  it('--expires takes 90m, 24h, 7d up to 30d and refuses the rest', () => {
    expect(parseKeyTtl('90m')).toBe(90 * 60_000)
    expect(parseKeyTtl('24h')).toBe(DAY)
    expect(parseKeyTtl('30d')).toBe(30 * DAY)
    for (const bad of ['0h', '31d', '24', 'h', '-1h', '1.5h', '24 hours', '']) expect(() => parseKeyTtl(bad), bad).toThrow(/--expires must be/)
  })
})

describe('pool key validity', () => {
  const key = newPoolKey()
  const e = entryOf(key)
  it('a single-use key is spent by its first node, which may ask again; others are refused', () => {
    expect(checkPoolKey([e], e.hash, NODE_A, T0)).toBe(e)
    const spent = spendPoolKey([e], e.hash, NODE_A, T0 + 1)
    expect(spent[0]?.uses).toEqual([{ nodeId: NODE_A, at: T0 + 1 }])
    expect(poolKeyState(spent[0]!, T0 + 2)).toBe('spent')
    expect(checkPoolKey(spent, e.hash, NODE_A, T0 + 2)).toBe(spent[0])
    expect(checkPoolKey(spent, e.hash, NODE_B, T0 + 2)).toBe('spent-key')
    // spending twice for the same node records it once
    expect(spendPoolKey(spent, e.hash, NODE_A, T0 + 3)[0]?.uses).toHaveLength(1)
  })
  it('a reusable key admits many nodes until it expires; revoked and unknown keys are refused', () => {
    const r = entryOf(key, { reusable: true, uses: [{ nodeId: NODE_A, at: T0 }] })
    expect(checkPoolKey([r], r.hash, NODE_B, T0 + 1)).toBe(r)
    expect(checkPoolKey([r], r.hash, NODE_B, T0 + DAY)).toBe('expired-key')
    expect(checkPoolKey([entryOf(key, { revokedAt: T0 })], e.hash, NODE_A, T0 + 1)).toBe('revoked-key')
    expect(checkPoolKey([e], poolKeyHash(poolKeyPublicKey(parsePoolKey(newPoolKey()))), NODE_A, T0)).toBe('unknown-key')
    // revoked outranks expired outranks spent
    expect(poolKeyState(entryOf(key, { revokedAt: T0, uses: [{ nodeId: NODE_A, at: T0 }] }), T0 + 2 * DAY)).toBe('revoked')
  })
  it('dead keys are pruned a month after they died, usable ones never', () => {
    const keys = [e, entryOf(newPoolKey(), { revokedAt: T0 }), entryOf(newPoolKey(), { uses: [{ nodeId: NODE_A, at: T0 }] })]
    expect(prunePoolKeys(keys, T0 + 29 * DAY)).toHaveLength(3)
    expect(prunePoolKeys(keys, T0 + 31 * DAY)).toEqual([]) // e expired at T0 + 1 day
    expect(prunePoolKeys([entryOf(key, { expiresAt: T0 + 60 * DAY })], T0 + 59 * DAY)).toHaveLength(1)
  })
})

describe('certificate requests with a pool key', () => {
  const key = newPoolKey()
  it('prove the key by signature, carry neither key nor seed, and fit the size bound', () => {
    const req = createCertRequest(DEVICE, POOL_ID, T0, key, NONCE)
    expect(req.bytes.length).toBe(MAX_CERT_REQUEST_BYTES - 64 + new TextEncoder().encode(DEVICE.name).length)
    expect(Buffer.from(req.bytes).includes(Buffer.from(parsePoolKey(key)))).toBe(false)
    expect(decodeCertRequest(req.bytes).keyProof?.publicKey).toEqual(poolKeyPublicKey(parsePoolKey(key)))
  })
  it.each(['token', 'manual', 'open'] as const)('are signed at once under the %s policy, naming the key to spend', (policy) => {
    const d = decideCertRequest(createCertRequest(DEVICE, POOL_ID, T0, key, NONCE), ctx(policy, [entryOf(key)]), T0)
    expect(d).toMatchObject({ kind: 'issue', poolKey: entryOf(key).hash })
  })
  it('a spent, unknown or tampered proof is refused, not held for approval', () => {
    const spent = entryOf(key, { uses: [{ nodeId: NODE_A, at: T0 }] })
    expect(decideCertRequest(createCertRequest(DEVICE, POOL_ID, T0, key, NONCE), ctx('manual', [spent]), T0)).toEqual({ kind: 'refuse', reason: 'spent-key' })
    expect(decideCertRequest(createCertRequest(DEVICE, POOL_ID, T0, key, NONCE), ctx('token', []), T0)).toEqual({ kind: 'refuse', reason: 'unknown-key' })
    // the key's public key swapped for another key's, the request re-signed by the device: the key signature fails
    const mine = createCertRequest(DEVICE, POOL_ID, T0, key, NONCE)
    const forged = Uint8Array.from(mine.signedBytes)
    forged.set(poolKeyPublicKey(parsePoolKey(newPoolKey())), forged.length - 96)
    expect(decideCertRequest(decodeCertRequest(seal(forged, DEVICE.privateKey)), ctx('token', [entryOf(key)]), T0)).toEqual({ kind: 'refuse', reason: 'bad-key-proof' })
  })
})

describe('the admin spends a key in the same write that records the member', () => {
  it('first device is certified, a second with the same key is refused and nothing else changes', () => {
    const { home: admin } = homeWithPool(tmp, 'admin', 'manual')
    const { poolId, key } = createPoolKey(admin, { name: 'rack-1', reusable: false, ttlMs: DAY, now: Date.now() })
    const root = adminPool(admin, undefined).rootPublicKey
    const join = (name: string): { home: string, bytes: Uint8Array } => {
      const home = tmp()
      initDevice(home, { networkId: 'lan', name })
      joinPool(home, { poolId, rootPublicKey: root, name: 'office', token: key, now: Date.now() })
      return { home, bytes: certRequestFor(home, poolId, Date.now()).bytes }
    }
    const a = join('a')
    expect(handleCertRequest(admin, a.bytes, Date.now()).decision.kind).toBe('issue')
    const after = adminPool(admin, poolId)
    expect(after.poolKeys[0]?.uses.map(u => u.nodeId)).toEqual([loadDevice(a.home).nodeId])
    expect(after.members.map(m => m.name)).toContain('a')
    const b = join('b')
    const before = snapshot(admin)
    expect(handleCertRequest(admin, b.bytes, Date.now()).decision).toEqual({ kind: 'refuse', reason: 'spent-key' })
    expect(snapshot(admin)).toEqual(before)
    // the first device's renewal needs no key any more
    expect(handleCertRequest(admin, certRequestFor(a.home, poolId, Date.now()).bytes, Date.now()).decision.kind).toBe('issue')
  })
})

describe('mesh pool-key', () => {
  it('create prints the key once, list shows its state and uses (never the key), revoke by id', async () => {
    const { home } = homeWithPool(tmp, 'admin', 'token')
    const created = JSON.parse(await meshOk(inProcess, home, ['pool-key', 'create', '--name', 'rack-1', '--expires', '2h', '--json'])) as { key: string, id: string, state: string, reusable: boolean }
    expect(created).toMatchObject({ state: 'usable', reusable: false })
    expect(created.key).toMatch(/^mpk1_/)
    const listed = await meshOk(inProcess, home, ['pool-key', 'list'])
    expect(listed).toMatch(new RegExp(`^${created.id}  usable   single-use  \\S+Z  rack-1$`, 'm'))
    expect(listed).not.toContain(created.key)
    expect(JSON.stringify(snapshot(home))).not.toContain(Buffer.from(created.key).toString('base64'))
    expect(await meshOk(inProcess, home, ['pool-key', 'revoke', created.id])).toMatch(/^revoked pool key \w{12} \(rack-1\) of pool/)
    expect(await meshOk(inProcess, home, ['pool-key', 'list'])).toMatch(/ revoked /)
    await meshFails(inProcess, home, ['pool-key', 'revoke', created.id], /is already revoked/)
  })
  it.each([
    [['pool-key', 'create', '--expires', '45d'], /--expires must be a duration/],
    [['pool-key', 'create', '--pool-id', 'abcd'], /Pool ID|pool id|16/i],
    [['pool-key', 'revoke', 'ffffffffffff'], /no pool key "ffffffffffff"/],
    [['pool-key', 'revoke'], /missing KEY/],
    [['pool-key', 'revoke', 'mpk1_short'], /a pool key is mpk1_/]
  ])('%j fails on one line and changes nothing', async (args, message) => {
    const { home } = homeWithPool(tmp, 'admin', 'token')
    await meshFails(inProcess, home, args, message)
  })
  it('on a device that administers no pool says so', async () => {
    const { home } = homeWithPool(tmp, 'member')
    await meshFails(inProcess, home, ['pool-key', 'list'], /not the admin of any pool; create one with `mesh pool-create`/)
  })
  it('pool-join takes a pool key in --token', async () => {
    const { home } = homeWithPool(tmp, 'member')
    const key = newPoolKey()
    await meshOk(inProcess, home, ['pool-join', '--pool-id', POOL_ID, `--pool-root-pubkey=${Buffer.from(ROOT_PUB).toString('hex')}`, '--name', 'office', `--token=${key}`])
    expect(decodeCertRequest(certRequestFor(home, POOL_ID, Date.now()).bytes).keyProof).toBeDefined()
    await meshFails(inProcess, tmp(), ['pool-join', '--pool-id', POOL_ID, `--pool-root-pubkey=${Buffer.from(ROOT_PUB).toString('hex')}`, '--name', 'office', '--token=mpk1_x'], /a pool key is mpk1_/)
  })
})
