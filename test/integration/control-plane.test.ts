import { execFile } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { ControlPlaneRequestError } from '../../src/control-plane/client.js'
import { newNonce, signRequest } from '../../src/control-plane/signing.js'
import { MAIN, clientFor, startControlPlane, type RunningControlPlane } from '../helpers/control-plane.js'
import { exited, makeMember, makePool, tempHome, type TestMember } from '../helpers/members.js'

const run = promisify(execFile)
const running: RunningControlPlane[] = []
const blockers: net.Server[] = []

afterEach(async () => {
  await Promise.all(running.splice(0).map(async (cp) => { await cp.stop() }))
  await Promise.all(blockers.splice(0).map(async (s) => { await new Promise((resolve) => s.close(resolve)) }))
})

async function start (home = tempHome(), args: string[] = ['--port', '0']): Promise<RunningControlPlane> {
  const cp = await startControlPlane(home, args)
  running.push(cp)
  return cp
}

async function blockPort (port = 0): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(port, '127.0.0.1', resolve) })
  blockers.push(s)
  return (s.address() as net.AddressInfo).port
}

/** A raw signed request, so tests can tamper with what the client would send. */
function signed (m: TestMember, method: string, p: string, body: string, timestamp = Date.now()): Record<string, string> {
  return {
    ...signRequest({ method, path: p, body: new TextEncoder().encode(body), timestamp, nonce: newNonce() }, m.certBytes, m.seed),
    'content-type': 'application/json'
  }
}

async function refusal (p: Promise<unknown>): Promise<{ status: number, reason: string }> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(ControlPlaneRequestError)
  const e = err as ControlPlaneRequestError
  return { status: e.status, reason: e.reason }
}

describe('mesh-control-plane: port', () => {
  it('falls back to the next free port of the range when the first is taken, and prints it', async () => {
    const taken = await blockPort()
    const cp = await start(tempHome(), ['--port-base', String(taken)])
    expect(cp.port).toBeGreaterThan(taken)
    expect(cp.port).toBeLessThan(taken + 100)
    const health = await (await fetch(`${cp.url}/health`)).json() as { status: string }
    expect(health.status).toBe('ok')
  })

  it('an explicit --port that is taken is an error on one line, exit 1, no stack', async () => {
    const taken = await blockPort()
    const home = tempHome()
    const r = await run(process.execPath, [MAIN, '--home', home, '--host', '127.0.0.1', '--port', String(taken)]).then(
      () => { throw new Error('expected failure') }, (e: { code: number, stdout: string, stderr: string }) => e)
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr.trim().split('\n')).toEqual([`mesh-control-plane: port ${taken} on 127.0.0.1 is already in use; stop what uses it or pick another --port`])
  })

  it('a bad flag value is a usage error (exit 2)', async () => {
    const r = await run(process.execPath, [MAIN, '--home', tempHome(), '--port', '70000']).then(
      () => { throw new Error('expected failure') }, (e: { code: number, stderr: string }) => e)
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe('mesh-control-plane: --port must be a port number 0-65535, 0 for any free port (got 70000)')
  })
})

describe('mesh-control-plane: authentication', () => {
  it('refuses unauthenticated, forged, replayed, stale, foreign, malformed and oversized requests with their status, and counts them', async () => {
    const cp = await start()
    const pool = makePool()
    const alice = makeMember(pool, 'alice')
    const a = clientFor(cp.url, alice)
    await a.register(pool.rootPublicKey)
    const ringPath = `/v1/pools/${pool.poolId}/ring/join`

    // no signature at all
    expect((await fetch(cp.url + ringPath, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(401)

    // forged: the body was changed after signing
    const h = signed(alice, 'POST', ringPath, '{}')
    expect((await fetch(cp.url + ringPath, { method: 'POST', headers: h, body: '{"weight":5}' })).status).toBe(401)
    // forged: signed by a key other than the certificate's device key
    const mallory = makeMember(pool, 'mallory')
    const forged = { ...signed(mallory, 'POST', ringPath, '{}'), 'x-mesh-cert': signed(alice, 'POST', ringPath, '{}')['x-mesh-cert'] as string }
    expect((await fetch(cp.url + ringPath, { method: 'POST', headers: forged, body: '{}' })).status).toBe(401)

    // replayed: the exact same signed request twice
    const once = signed(alice, 'POST', ringPath, '{}')
    expect((await fetch(cp.url + ringPath, { method: 'POST', headers: once, body: '{}' })).status).toBe(200)
    const again = await fetch(cp.url + ringPath, { method: 'POST', headers: once, body: '{}' })
    expect(again.status).toBe(409)
    expect(await again.json()).toMatchObject({ error: 'replay' })

    // stale: a clock five minutes behind
    expect(await refusal(clientFor(cp.url, alice, { now: () => Date.now() - 300_000 }).ring())).toEqual({ status: 401, reason: 'stale-timestamp' })

    // certificates that do not make a member: another root's, expired, another pool's
    const impostor = makeMember(pool, 'impostor', { signer: makePool().rootSeed })
    expect(await refusal(clientFor(cp.url, impostor).ring())).toEqual({ status: 403, reason: 'not-member' })
    const expired = makeMember(pool, 'old', { notBefore: Date.now() - 7_200_000, notAfter: Date.now() - 3_600_000 })
    expect(await refusal(clientFor(cp.url, expired).register(pool.rootPublicKey))).toEqual({ status: 403, reason: 'not-member' })
    const other = makePool()
    const stranger = makeMember(other, 'stranger')
    const crossPath = `/v1/pools/${pool.poolId}/ring`
    expect((await fetch(cp.url + crossPath, { headers: signed(stranger, 'GET', crossPath, '') })).status).toBe(403)
    // a valid member of a pool nobody registered here, and a valid member that did not register
    expect(await refusal(clientFor(cp.url, stranger).ring())).toEqual({ status: 404, reason: 'unknown-pool' })
    expect(await refusal(clientFor(cp.url, makeMember(pool, 'bob')).ring())).toEqual({ status: 403, reason: 'not-registered' })
    // registering with a root key that is not the pool's
    expect(await refusal(clientFor(cp.url, stranger).register(pool.rootPublicKey))).toEqual({ status: 400, reason: 'malformed' })

    // malformed bodies, properly signed
    expect(await refusal(a.request('POST', ringPath, { weight: 'heavy' }))).toEqual({ status: 400, reason: 'malformed' })
    expect(await refusal(a.submitJob({ prompt: '', maxTokens: 8 }))).toEqual({ status: 400, reason: 'malformed' })
    const notJson = signed(alice, 'POST', ringPath, '{nope')
    expect((await fetch(cp.url + ringPath, { method: 'POST', headers: notJson, body: '{nope' })).status).toBe(400)

    // oversized: over the 1 MiB body limit
    const big = JSON.stringify({ prompt: 'x'.repeat(1_100_000), maxTokens: 1 })
    const jobsPath = `/v1/pools/${pool.poolId}/jobs`
    expect((await fetch(cp.url + jobsPath, { method: 'POST', headers: signed(alice, 'POST', jobsPath, big), body: big })).status).toBe(413)

    const health = await (await fetch(`${cp.url}/health`)).json() as { refused: Record<string, number> }
    expect(health.refused).toMatchObject({
      'unauthenticated': 1,
      'bad-signature': 2,
      'replay': 1,
      'stale-timestamp': 1,
      'not-member': 3,
      'unknown-pool': 1,
      'not-registered': 1,
      'malformed': 4,
      'oversized': 1
    })
    // the server survived all of it
    expect((await a.ring()).members.map((m) => m.name)).toEqual(['alice'])
  })
})

describe('mesh-control-plane: ring and jobs', () => {
  it('runs the HTTP ring: two members get 4096 columns each; leaving gives one the whole ring', async () => {
    const cp = await start()
    const pool = makePool()
    const [a, b] = [makeMember(pool, 'alice'), makeMember(pool, 'bob')].map((m) => clientFor(cp.url, m)) as [ReturnType<typeof clientFor>, ReturnType<typeof clientFor>]
    await a.register(pool.rootPublicKey)
    await b.register(pool.rootPublicKey)
    const first = await a.joinRing({ addresses: ['/ip4/10.0.0.1/tcp/4002'] })
    expect(first.members).toHaveLength(1)
    const both = await b.joinRing()
    expect(both.members.map((m) => m.end - m.start)).toEqual([4096, 4096])
    expect(both.epoch).toBe(first.epoch + 1)
    expect((await a.heartbeat()).hash).toBe(both.hash)
    const left = await b.leaveRing()
    expect(left.members.map((m) => [m.name, m.start, m.end, m.addresses])).toEqual([['alice', 0, 8192, ['/ip4/10.0.0.1/tcp/4002']]])
    expect(left.epoch).toBe(both.epoch + 1)
    expect(await refusal(b.heartbeat())).toEqual({ status: 409, reason: 'conflict' })
  })

  it('round-trips a job: submit, claim (long poll wakes on submit), stream tokens, result, fetch', async () => {
    const cp = await start()
    const pool = makePool()
    const sub = clientFor(cp.url, makeMember(pool, 'submitter'))
    const agent = clientFor(cp.url, makeMember(pool, 'agent'))
    const nosy = clientFor(cp.url, makeMember(pool, 'nosy'))
    for (const c of [sub, agent, nosy]) await c.register(pool.rootPublicKey)

    const claiming = agent.claimJob(10_000)
    const submitted = await sub.submitJob({ prompt: 'Once upon a time', maxTokens: 4 })
    expect(submitted.state).toBe('queued')
    const claimed = await claiming
    expect(claimed?.jobId).toBe(submitted.jobId)
    expect(claimed?.request).toEqual({ prompt: 'Once upon a time', maxTokens: 4, temperature: 0 })
    expect(await agent.claimJob()).toBeUndefined()

    const watching = sub.job(submitted.jobId, { from: 0, waitMs: 10_000 })
    expect(await agent.postTokens(submitted.jobId, 0, [' there', ' was'])).toBe(2)
    const firstTokens = await watching
    expect(firstTokens.tokens).toEqual([' there', ' was'])
    expect(await agent.postTokens(submitted.jobId, 0, [' there', ' was'])).toBe(2) // a retry changes nothing
    expect(await refusal(agent.postTokens(submitted.jobId, 5, [' x']))).toEqual({ status: 409, reason: 'conflict' })
    expect(await agent.postTokens(submitted.jobId, 2, [' a', ' girl'])).toBe(4)
    expect(await refusal(sub.postTokens(submitted.jobId, 4, [' no']))).toEqual({ status: 409, reason: 'conflict' })
    expect(await refusal(nosy.job(submitted.jobId))).toEqual({ status: 403, reason: 'not-allowed' })

    await agent.finishJob(submitted.jobId, { result: { text: ' there was a girl', tokens: 4, stats: { tokensPerSecond: 12.5 } } })
    const done = await sub.job(submitted.jobId, { from: 2 })
    expect(done).toMatchObject({ state: 'done', tokens: [' a', ' girl'], next: 4, claimedBy: claimed?.claimedBy, result: { text: ' there was a girl', tokens: 4 } })
    expect(await refusal(agent.finishJob(submitted.jobId, { error: 'again' }))).toEqual({ status: 409, reason: 'conflict' })
  })
})

describe('mesh-control-plane: durability', () => {
  it('keeps every acknowledged job and an intact database after kill -9 mid-write', async () => {
    const home = tempHome()
    const cp = await start(home)
    const pool = makePool()
    const member = makeMember(pool, 'writer')
    const c = clientFor(cp.url, member)
    await c.register(pool.rootPublicKey)

    const acked: string[] = []
    let stop = false
    const writer = async (): Promise<void> => {
      while (!stop) {
        try { acked.push((await c.submitJob({ prompt: `job ${acked.length}`, maxTokens: 1 })).jobId) } catch { return }
      }
    }
    const writers = [writer(), writer(), writer(), writer()]
    await expect.poll(() => acked.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(40)
    cp.proc.kill('SIGKILL') // requests are still in flight
    expect((await exited(cp.proc)).signal).toBe('SIGKILL')
    stop = true
    await Promise.all(writers)

    const file = path.join(home, 'control-plane.sqlite')
    expect(fs.existsSync(file)).toBe(true)
    const db = new Database(file)
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
      const ids = new Set((db.prepare('SELECT job_id FROM jobs').all() as Array<{ job_id: string }>).map((r) => r.job_id))
      expect(acked.filter((id) => !ids.has(id))).toEqual([])
    } finally {
      db.close()
    }

    // and the server reopens it and serves the jobs
    const again = await start(home)
    const job = await clientFor(again.url, member).job(acked[0] as string)
    expect(job.state).toBe('queued')
  })
})
