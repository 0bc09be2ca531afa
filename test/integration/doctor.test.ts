import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { RingReport } from '../../src/agent/net/pool-ring.js'
import { CHECKS } from '../../src/ops/doctor/checks.js'
import type { DoctorReport } from '../../src/ops/doctor/run.js'
import { joinPool, keyId, listPoolRecords, loadDevice, publicKeyOf, readRootKey, acceptCertificate, newSerial, signMemberCert } from '../../src/pool/index.js'
import { killAgents, mesh, startAgents, type RunResult } from '../helpers/agent-procs.js'
import { startControlPlane, type RunningControlPlane } from '../helpers/control-plane.js'
import { exited } from '../helpers/members.js'
import { tempRoot, testDevice, testPool } from '../helpers/pools.js'
import { startRelay } from '../helpers/relay.js'

const homes: string[] = []
const procs: ChildProcess[] = []
const planes: RunningControlPlane[] = []
const dirs: string[] = []
afterEach(async () => {
  killAgents(homes.splice(0))
  await Promise.all(planes.splice(0).map(async (p) => { await p.stop() }))
  await Promise.all(procs.splice(0).map(async (p) => { if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM'); await exited(p) }))
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

const DEADLINE = new Map(CHECKS.map((c) => [c.id, c.deadlineMs]))
/** scheduling slack on a machine shared with benchmarks: a check's ms is measured around its promise */
const SLACK_MS = 250

/** `mesh doctor --json` as a child process: the report, its exit code and stderr; every check within its deadline. */
async function doctor (home: string, args: string[] = []): Promise<{ report: DoctorReport, run: RunResult, byId: Record<string, DoctorReport['checks'][number]> }> {
  const run = await mesh(home, ['doctor', '--json', ...args])
  const report = JSON.parse(run.stdout) as DoctorReport
  for (const c of report.checks) expect(c.ms, `${c.id} took ${c.ms} ms`).toBeLessThanOrEqual((DEADLINE.get(c.id) ?? 0) + SLACK_MS)
  if (run.code !== 0) expect(run.stderr.trim().split('\n'), 'one line on stderr').toHaveLength(1)
  return { report, run, byId: Object.fromEntries(report.checks.map((c) => [c.id, c])) }
}

/** Checks that are not ok, as [id, status]. */
const notOk = (r: DoctorReport): string[][] => r.checks.filter((c) => c.status !== 'ok').map((c) => [c.id, c.status])

describe('mesh doctor against real agents on 127.0.0.1', () => {
  it('a healthy 2-member pool is all ok (the service skipped: none installed); then each failure, produced for real, fails with its fix', async () => {
    const root = tempRoot(); dirs.push(root)
    const pool = testPool(root, ['admin', 'm1'])
    const [admin, m1] = [pool.admin, pool.members[0]!]
    const relay = await startRelay(path.join(root, 'relay'), ['--pool-root-pubkey', pool.rootPublicKey], procs)
    const cp = await startControlPlane(path.join(root, 'cp'), ['--port', '0']); planes.push(cp)
    // a copy of the bundled model, so the test can change it under the agents
    const modelDir = path.join(root, 'model'); fs.mkdirSync(modelDir)
    for (const f of ['stories260K.bin', 'tok512.bin']) fs.copyFileSync(path.resolve('models/stories260K', f), path.join(modelDir, f))
    const model = path.join(modelDir, 'stories260K.bin')
    await startAgents([admin.home, m1.home], homes, [
      '--relay', relay.addr, '--control-plane', cp.url, '--model', model, '--tokenizer', path.join(modelDir, 'tok512.bin'), '--api', '127.0.0.1:0', '--threads', '1'
    ])
    await vi.waitFor(async () => {
      for (const h of [admin.home, m1.home]) expect((await callAgent<RingReport[]>(h, 'GET', '/v1/ring'))[0]).toMatchObject({ converged: true, topology: { members: [{}, {}] } })
    }, { timeout: 30_000, interval: 200 })

    // healthy: every check ok but the service, skipped with its reason; --json's exact shape
    for (const home of [admin.home, m1.home]) {
      const { report, run, byId } = await doctor(home)
      expect(notOk(report), JSON.stringify(report.checks.filter((c) => c.status !== 'ok'))).toEqual([['service', 'skip']])
      expect(byId.service!.detail).toBe(`no service installed for ${home}`)
      expect(run.code).toBe(0)
      expect(Object.keys(report)).toEqual(['checks', 'status'])
      expect(report.status).toBe('ok')
      expect(report.checks.map((c) => c.id)).toEqual(CHECKS.map((c) => c.id))
      for (const c of report.checks) {
        expect(Object.keys(c)).toEqual(['id', 'status', 'detail', 'fix', 'ms'])
        expect(typeof c.detail === 'string' && typeof c.fix === 'string' && Number.isInteger(c.ms)).toBe(true)
      }
      expect(byId.ring!.detail).toMatch(/^test pool: epoch \d+, 2 members, hash [0-9a-f]{12}, the same on every member$/)
      expect(byId.peers!.detail).toBe('test pool: 1 by beacon, 1 by libp2p')
      expect(byId.clock!.detail).toMatch(/^within \d+ ms of 1 member$/)
      expect(byId.api!.detail).toMatch(/^http:\/\/127\.0\.0\.1:\d+ answers \((200|503)\), this machine only$/)
    }
    const text = await mesh(m1.home, ['doctor'])
    expect(text.code).toBe(0)
    expect(text.stdout.split('\n').filter((l) => /^(ok|warn|fail|skip) /.test(l)).map((l) => l.split(/\s+/)[1])).toEqual(CHECKS.map((c) => c.id))

    // the model file changes under the running agent
    const original = fs.readFileSync(model)
    fs.appendFileSync(model, Buffer.from([0]))
    let d = await doctor(m1.home)
    expect(d.run.code).toBe(1)
    expect(d.byId.model).toMatchObject({ status: 'fail', detail: expect.stringMatching(/stories260K\.bin changed since the agent loaded it/), fix: expect.stringMatching(/restart the agent/) })
    expect(d.run.stderr).toMatch(/^mesh: 1 check failed, 0 warnings: model; each has its fix above/)
    fs.writeFileSync(model, original)

    // a corrupt agent.json: config fails, the checks that read it are skipped with the reason
    fs.writeFileSync(path.join(m1.home, 'agent.json'), '{"threads": ')
    d = await doctor(m1.home)
    expect(d.byId.config).toMatchObject({ status: 'fail', detail: expect.stringMatching(/agent\.json is corrupt \(it is not valid JSON\)/), fix: expect.stringMatching(/^fix \S+agent\.json by hand/) })
    for (const id of ['certificates', 'beacon', 'model', 'relay', 'control-plane', 'api']) expect(d.byId[id], id).toMatchObject({ status: 'skip', detail: 'needs config: failed' })
    expect(d.byId.identity!.status).toBe('ok')
    fs.rmSync(path.join(m1.home, 'agent.json'))

    // the agent stopped: it fails with its fix; what needs it is skipped; the admin, alone now, warns (exit 0, --strict 1)
    expect((await mesh(m1.home, ['stop'])).code).toBe(0)
    d = await doctor(m1.home)
    expect(d.byId.agent).toMatchObject({ status: 'fail', detail: `no agent answers on ${m1.home}/run/agent.sock`, fix: 'start it: mesh start' })
    for (const id of ['peers', 'ring', 'api', 'clock']) expect(d.byId[id], id).toMatchObject({ status: 'skip', detail: 'needs agent: failed' })
    await vi.waitFor(async () => { expect((await callAgent<RingReport[]>(admin.home, 'GET', '/v1/ring'))[0]?.topology.members).toHaveLength(1) }, { timeout: 15_000, interval: 100 })
    d = await doctor(admin.home)
    expect(notOk(d.report)).toEqual([['peers', 'warn'], ['clock', 'skip'], ['service', 'skip']])
    expect(d.byId.peers!.fix).toMatch(/start the agent on another member/)
    expect(d.run.code).toBe(0)
    const strict = await doctor(admin.home, ['--strict'])
    expect(strict.run.code).toBe(1)
    expect(strict.run.stderr).toMatch(/^mesh: 0 checks failed, 1 warning: peers/)

    // the relay and the control plane go down
    relay.proc.kill('SIGTERM'); await exited(relay.proc)
    await cp.stop()
    d = await doctor(admin.home)
    expect(d.byId.relay).toMatchObject({ status: 'fail', detail: expect.stringMatching(/^relay 127\.0\.0\.1:\d+ unreachable \(ECONNREFUSED\)$/), fix: expect.stringMatching(/start mesh-relay there/) })
    expect(d.byId['control-plane']).toMatchObject({ status: 'fail', detail: `control plane ${cp.url} unreachable (ECONNREFUSED)`, fix: expect.stringMatching(/start mesh-control-plane there/) })
    expect(d.run.code).toBe(1)
  }, 180_000)

  it('an expired certificate (issued by the pool root for a short while, now past) fails with its fix', async () => {
    const root = tempRoot(); dirs.push(root)
    const pool = testPool(root, ['admin'])
    const dev = testDevice(root, 'late')
    const now = Date.now()
    joinPool(dev.home, { poolId: pool.poolId, rootPublicKey: pool.rootPublicKey, name: 'test pool', token: pool.joinToken, now })
    const rootKey = readRootKey(pool.admin.home, listPoolRecords(pool.admin.home)[0]!)
    const device = loadDevice(dev.home)
    const cert = signMemberCert({
      version: 1, poolId: pool.poolId, nodeId: device.nodeId, devicePublicKey: device.publicKey, name: dev.name, roles: ['member'],
      serial: newSerial(), notBefore: now - 3 * 86_400_000, notAfter: now - 86_400_000, issuerKeyId: keyId(publicKeyOf(rootKey))
    }, rootKey)
    // accepted while it was valid, as an agent would have two days ago
    acceptCertificate(dev.home, pool.poolId, cert.bytes, now - 2 * 86_400_000)
    const { byId, run } = await doctor(dev.home)
    expect(byId.certificates).toMatchObject({ status: 'fail', detail: expect.stringMatching(/^pool test pool \([0-9a-f]+\): certificate expired \d{4}-/), fix: expect.stringMatching(/mesh start/) })
    expect(run.code).toBe(1)
  }, 60_000)
})
