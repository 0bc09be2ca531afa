import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { ControlPlaneRequestError, type ControlPlaneClient } from '../../../src/control-plane/client.js'
import { dbFile, openDatabase, schemaVersion } from '../../../src/control-plane/db.js'
import { DatabaseError, DatabaseTooNewError } from '../../../src/control-plane/errors.js'
import { candidatePorts } from '../../../src/control-plane/listen.js'
import { MIGRATIONS } from '../../../src/control-plane/migrations.js'
import { buildControlPlane, defaultConfig, type ControlPlane, type ControlPlaneConfig } from '../../../src/control-plane/server.js'
import { clientFor } from '../../helpers/control-plane.js'
import { keyId, publicKeyOf, signRevocationList } from '../../../src/pool/index.js'
import { makeMember, makePool, tempHome, type TestPool } from '../../helpers/members.js'

/** The real app on 127.0.0.1 in this process, with a clock the test moves. */
async function inProcess (config: Partial<ControlPlaneConfig> = {}): Promise<{ cp: ControlPlane, url: string, clock: { t: number }, client: (pool: TestPool, name: string) => ControlPlaneClient }> {
  const clock = { t: Date.now() }
  const db = openDatabase(tempHome())
  const cp = buildControlPlane(db, pino({ level: 'silent' }), { ...defaultConfig(), ...config }, () => clock.t)
  await cp.app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(cp.app.server.address() as { port: number }).port}`
  open.push(async () => { await cp.close(); db.close() })
  return { cp, url, clock, client: (pool, name) => clientFor(url, makeMember(pool, name), { now: () => clock.t }) }
}
const open: Array<() => Promise<void>> = []
afterEach(async () => { for (const close of open.splice(0)) await close() })

async function statusOf (p: Promise<unknown>): Promise<number> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(ControlPlaneRequestError)
  return (err as ControlPlaneRequestError).status
}

describe('control-plane HTTP ring liveness', () => {
  it('drops a member whose heartbeats stop for the TTL, bumping the epoch; it must join again', async () => {
    const { clock, client } = await inProcess()
    const pool = makePool()
    const a = client(pool, 'alice')
    const b = client(pool, 'bob')
    await a.register(pool.rootPublicKey); await b.register(pool.rootPublicKey)
    await a.joinRing(); const two = await b.joinRing()
    expect(two.members).toHaveLength(2)
    const ttl = defaultConfig().memberTtlMs
    clock.t += ttl - 1000
    await a.heartbeat()
    clock.t += 1001 // bob is now past the TTL, alice is not
    const one = await a.ring()
    expect(one.members.map((m) => [m.name, m.start, m.end])).toEqual([['alice', 0, 8192]])
    expect(one.epoch).toBe(two.epoch + 1)
    expect(await statusOf(b.heartbeat())).toBe(409)
    expect((await b.joinRing()).members).toHaveLength(2)
  })
})

describe('control-plane revocation', () => {
  it('takes a newer root-signed list from any member, drops the revoked from the ring and refuses them', async () => {
    const { url, clock } = await inProcess()
    const pool = makePool()
    const bob = makeMember(pool, 'bob')
    const a = clientFor(url, makeMember(pool, 'alice'), { now: () => clock.t })
    const b = clientFor(url, bob, { now: () => clock.t })
    await a.register(pool.rootPublicKey); await b.register(pool.rootPublicKey)
    await a.joinRing(); expect((await b.joinRing()).members).toHaveLength(2)
    const list = (sequence: number, nodeIds: string[], root = pool.rootSeed) => signRevocationList({
      version: 1, poolId: pool.poolId, issuerKeyId: keyId(publicKeyOf(root)), sequence, issuedAt: clock.t, serials: [], nodeIds
    }, root).bytes

    expect(await a.uploadRevocation(list(2, [bob.nodeId]))).toMatchObject({ sequence: 2, changed: true })
    expect((await a.ring()).members.map((m) => m.name)).toEqual(['alice'])
    const refused = await b.heartbeat().then(() => undefined, (e: unknown) => e)
    expect(refused).toMatchObject({ status: 403, reason: 'not-member' })
    expect(await b.register(pool.rootPublicKey).then(() => 'registered', (e: ControlPlaneRequestError) => e.status)).toBe(403)

    expect(await a.uploadRevocation(list(2, [bob.nodeId]))).toMatchObject({ sequence: 2, changed: false })
    expect(await statusOf(a.uploadRevocation(list(1, [])))).toBe(409) // older: would un-revoke bob
    expect(await statusOf(a.uploadRevocation(list(3, [], makePool().rootSeed)))).toBe(400) // not this pool's root
  })
})

describe('control-plane certificate checks', () => {
  it('refuses a certificate once it expires, though it was verified (and cached) before', async () => {
    const { url, clock } = await inProcess()
    const pool = makePool()
    const m = makeMember(pool, 'brief', { notBefore: clock.t - 1000, notAfter: clock.t + 10_000 })
    const c = clientFor(url, m, { now: () => clock.t })
    await c.register(pool.rootPublicKey)
    await c.ring()
    clock.t += 10_000
    expect(await c.ring().then(() => 'accepted', (e: ControlPlaneRequestError) => `${e.status} ${e.reason}`)).toBe('403 not-member')
  })
})

describe('control-plane job leases', () => {
  it('gives a job whose claimer went silent to the next claimer, which starts over', async () => {
    const { clock, client } = await inProcess()
    const pool = makePool()
    const [sub, first, second] = [client(pool, 'sub'), client(pool, 'first'), client(pool, 'second')]
    for (const c of [sub, first, second]) await c.register(pool.rootPublicKey)
    const job = await sub.submitJob({ prompt: 'hi', maxTokens: 2 })
    expect((await first.claimJob())?.jobId).toBe(job.jobId)
    await first.postTokens(job.jobId, 0, ['a'])
    expect(await second.claimJob()).toBeUndefined()
    clock.t += defaultConfig().leaseMs + 1
    const again = await second.claimJob()
    expect(again?.jobId).toBe(job.jobId)
    expect((await sub.job(job.jobId)).tokens).toEqual([])
    expect(await statusOf(first.postTokens(job.jobId, 1, ['b']))).toBe(409)
    await second.finishJob(job.jobId, { error: 'model not loaded' })
    expect(await sub.job(job.jobId)).toMatchObject({ state: 'failed', error: 'model not loaded', claimedBy: again?.claimedBy })
  })

  it('deletes finished jobs after the retention, with their tokens, and keeps the rest', async () => {
    const jobRetentionMs = 60_000
    const { cp, clock, client } = await inProcess({ jobRetentionMs })
    const pool = makePool()
    const [sub, agent] = [client(pool, 'sub'), client(pool, 'agent')]
    await sub.register(pool.rootPublicKey); await agent.register(pool.rootPublicKey)
    const done = await sub.submitJob({ prompt: 'a', maxTokens: 1 })
    const waiting = await sub.submitJob({ prompt: 'b', maxTokens: 1 })
    await agent.claimJob()
    await agent.postTokens(done.jobId, 0, ['x'])
    await agent.finishJob(done.jobId, { result: { text: 'x', tokens: 1 } })
    clock.t += jobRetentionMs - 1
    expect(cp.sweep().jobs).toBe(0)
    clock.t += 2
    expect(cp.sweep().jobs).toBe(1)
    expect(await statusOf(sub.job(done.jobId))).toBe(404)
    expect((await sub.job(waiting.jobId)).state).toBe('queued')
  })

  it('refuses submissions past the queue bound with 429', async () => {
    const { cp, client } = await inProcess({ maxQueuedJobs: 2 })
    const pool = makePool()
    const c = client(pool, 'busy')
    await c.register(pool.rootPublicKey)
    await c.submitJob({ prompt: 'a', maxTokens: 1 }); await c.submitJob({ prompt: 'b', maxTokens: 1 })
    expect(await statusOf(c.submitJob({ prompt: 'c', maxTokens: 1 }))).toBe(429)
    expect(cp.refusals.snapshot()['queue-full']).toBe(1)
  })
})

describe('control-plane store', () => {
  it('applies the migrations once and reopens at the same version', () => {
    const home = tempHome()
    openDatabase(home).close()
    const db = openDatabase(home)
    expect(schemaVersion(db)).toBe(MIGRATIONS.length)
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    db.close()
  })

  it('upgrades a store of an older version in place, keeping its rows', () => {
    const home = tempHome()
    const old = openDatabase(home, MIGRATIONS.slice(0, 1))
    old.prepare('INSERT INTO pools (pool_id, root_public_key, registered_at) VALUES (?, ?, ?)').run('p'.repeat(64), Buffer.alloc(32), 1)
    old.close()
    const db = openDatabase(home)
    expect(schemaVersion(db)).toBe(MIGRATIONS.length)
    expect(db.prepare('SELECT pool_id, revocation FROM pools').all()).toEqual([{ pool_id: 'p'.repeat(64), revocation: null }])
    db.close()
  })

  it('refuses a store from a newer version and names a damaged file, leaving both untouched', () => {
    const home = tempHome()
    const newer = new Database(dbFile(home)); newer.pragma('user_version = 99'); newer.close()
    expect(() => openDatabase(home)).toThrow(DatabaseTooNewError)
    const other = tempHome()
    fs.writeFileSync(path.join(other, 'control-plane.sqlite'), 'not a database, but someone\'s data'.repeat(200))
    expect(() => openDatabase(other)).toThrow(DatabaseError)
    expect(() => openDatabase(other)).toThrow(/control-plane\.sqlite: .*move the file aside/)
    expect(fs.readFileSync(path.join(other, 'control-plane.sqlite'), 'utf8')).toMatch(/^not a database/)
  })
})

describe('candidatePorts', () => {
  it('is the fixed port alone, or 100 ports from the base, clipped at 65535', () => {
    expect(candidatePorts({ host: 'h', port: 9000, base: 8080 })).toEqual([9000])
    const range = candidatePorts({ host: 'h', base: 8080 })
    expect([range.length, range[0], range[99]]).toEqual([100, 8080, 8179])
    expect(candidatePorts({ host: 'h', base: 65500 })).toHaveLength(36)
  })
})
