import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { AgentStatus } from '../../src/agent/agent.js'
import type { RingReport } from '../../src/agent/net/pool-ring.js'
import { readPid } from '../../src/agent/pidfile.js'
import { BUNDLED_MODEL, identifyModel } from '../../src/inference/served.js'
import { parseShape, writeSyntheticCheckpoint } from '../../src/inference/synth.js'
import { freeUdpPort, killAgents, logOf, mesh, MESH_JS } from '../helpers/agent-procs.js'
import { tempRoot, testDevice, testPool, type TestDevice } from '../helpers/pools.js'

const homes: string[] = []
const dirs: string[] = []
afterEach(() => {
  killAgents(homes.splice(0))
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

/** Start agents with unicast beacons to each other (no multicast needed on the test host). */
async function startAll (devs: Array<{ dev: TestDevice, args: string[] }>): Promise<void> {
  const ports = await Promise.all(devs.map(async () => await freeUdpPort()))
  await Promise.all(devs.map(async ({ dev, args }, i) => {
    homes.push(dev.home)
    const bootstrap = ports.filter((_, j) => j !== i).flatMap((p) => ['--bootstrap', `127.0.0.1:${p}`])
    const r = await mesh(dev.home, ['start', '--beacon-port', String(ports[i]), ...bootstrap, ...args])
    if (r.code !== 0) throw new Error(`start failed: ${r.stderr}\n${logOf(dev.home)}`)
  }))
}

describe('mesh start --model', () => {
  it('refuses a missing, truncated or mismatched model with one line, and starts nothing', async () => {
    const root = tempRoot(); dirs.push(root)
    const dev = testDevice(root, 'solo')
    const truncated = path.join(root, 'cut.bin')
    fs.writeFileSync(truncated, fs.readFileSync(BUNDLED_MODEL.checkpointPath).subarray(0, 5000))
    const cases: Array<[string[], RegExp]> = [
      [['--model', path.join(root, 'nope.bin')], /^mesh: model \S+nope\.bin does not exist\n$/],
      [['--model', truncated], /^mesh: checkpoint \S+cut\.bin truncated: 5000 bytes, but its header .* implies \d+\n$/],
      [['--tokenizer', 'test/fixtures/llama2-tokenizer/tokenizer.bin'], /^mesh: .*tokenizer.*\n$/]
    ]
    for (const [args, message] of cases) {
      const r = await mesh(dev.home, ['start', ...args])
      expect(r.code, r.stderr).not.toBe(0)
      expect(r.stderr).toMatch(message)
      expect(r.stdout).toBe('')
      expect(readPid(dev.home)).toBeUndefined()
    }
    // agent.json names the model too; a relative path there is relative to MESH_HOME
    fs.writeFileSync(path.join(dev.home, 'agent.json'), JSON.stringify({ model: 'cut.bin' }))
    fs.copyFileSync(truncated, path.join(dev.home, 'cut.bin'))
    const r = await mesh(dev.home, ['start', '--foreground'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain(`checkpoint ${path.join(dev.home, 'cut.bin')} truncated`)
  }, 120_000) // five mesh processes: slow on a busy machine

  it('announces the model in heartbeats; ring-status shows a member with another model as excluded', async () => {
    const root = tempRoot(); dirs.push(root)
    const pool = testPool(root, ['admin', 'other'])
    const other = path.join(root, 'other.bin')
    await writeSyntheticCheckpoint(other, parseShape('dim=32,hidden=64,layers=2,heads=4,kv_heads=2,vocab=512,seq_len=64'), 0, 3n)
    await startAll([{ dev: pool.admin, args: [] }, { dev: pool.members[0]!, args: ['--model', other] }])
    const bundled = (await identifyModel(BUNDLED_MODEL)).identity.id
    const otherId = (await identifyModel({ ...BUNDLED_MODEL, checkpointPath: other })).identity.id
    expect((await callAgent<AgentStatus>(pool.admin.home, 'GET', '/v1/status')).model?.id).toBe(bundled)
    expect((await callAgent<AgentStatus>(pool.members[0]!.home, 'GET', '/v1/status')).model).toMatchObject({ id: otherId, checkpoint: other })

    const adminId = pool.admin.nodeId
    const memberId = pool.members[0]!.nodeId
    await vi.waitFor(async () => {
      const [report] = await callAgent<RingReport[]>(pool.admin.home, 'GET', '/v1/ring')
      expect(report?.models).toEqual({ self: bundled, members: { [adminId]: bundled, [memberId]: otherId } })
      // stories260K (4 kv heads, 8 query heads, 172 FFN units) split evenly between two members
      expect(report?.units?.[adminId]).toEqual({ kvHeads: 2, queryHeads: 4, hidden: 86 })
    }, { timeout: 30_000, interval: 100 })
    await vi.waitFor(async () => {
      const [report] = await callAgent<RingReport[]>(pool.members[0]!.home, 'GET', '/v1/ring')
      expect(report?.models?.members[adminId]).toBe(bundled)
    }, { timeout: 10_000, interval: 100 })
    const json = JSON.parse((await mesh(pool.members[0]!.home, ['ring-status', '--json'])).stdout) as RingReport[]
    expect(json[0]?.models).toEqual({ self: otherId, members: { [adminId]: bundled, [memberId]: otherId } })

    const text = (await mesh(pool.admin.home, ['ring-status'])).stdout
    expect(text).toContain(`this device serves model ${bundled.slice(0, 12)}`)
    expect(text).toMatch(new RegExp(`${adminId} +admin .* ${bundled.slice(0, 12)} +yes`))
    expect(text).toMatch(new RegExp(`${memberId} +other .* ${otherId.slice(0, 12)} +excluded: serves another model \\(${otherId.slice(0, 12)}\\)`))
  }, 90_000)
})

describe('model transfer (/mesh/model/1.0.0)', () => {
  it('a member started with --model-sha256 fetches the checkpoint from a member that serves it, refusing one that sends a wrong file', async () => {
    const root = tempRoot(); dirs.push(root)
    const pool = testPool(root, ['admin', 'liar', 'fresh'])
    const [liar, fresh] = pool.members as [TestDevice, TestDevice]
    const shape = parseShape('dim=128,hidden=384,layers=4,heads=4,kv_heads=4,vocab=512,seq_len=64')
    const good = path.join(root, 'good.bin')
    const { sha256 } = await writeSyntheticCheckpoint(good, shape, 0, 5n)
    const lie = path.join(root, 'lie.bin')
    fs.copyFileSync(good, lie)
    const ports = await Promise.all([0, 1, 2].map(async () => await freeUdpPort()))
    const startArgs = (i: number, extra: string[]): string[] =>
      ['start', '--beacon-port', String(ports[i]), ...ports.filter((_, j) => j !== i).flatMap((p) => ['--bootstrap', `127.0.0.1:${p}`]), ...extra]
    homes.push(pool.admin.home, liar.home, fresh.home)

    // the liar hashed the right file at start, then the file changed under it: it sends other bytes
    const started = await mesh(liar.home, startArgs(1, ['--model', lie]))
    expect(started.code, started.stderr).toBe(0)
    await writeSyntheticCheckpoint(path.join(root, 'other.bin'), shape, 0, 6n)
    fs.renameSync(path.join(root, 'other.bin'), lie)

    const fetching = execMesh(fresh.home, startArgs(2, ['--model-sha256', sha256]))
    await vi.waitFor(() => { expect(logOf(fresh.home)).toContain('refused the model a member sent; not asking it again') }, { timeout: 40_000, interval: 100 })
    expect(logOf(fresh.home)).toMatch(new RegExp(`"from":"${liar.nodeId}","reason":"wrong-hash"`))
    const dest = path.join(fresh.home, 'models', `${sha256}.bin`)
    expect(fs.existsSync(dest)).toBe(false)
    expect(fs.readdirSync(path.join(fresh.home, 'models'))).toEqual([]) // the temporary file is gone too

    const admin = await mesh(pool.admin.home, startArgs(0, ['--model', good]))
    expect(admin.code, admin.stderr).toBe(0)
    const r = await fetching
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain('is not here; waiting for a pool member that serves it')
    expect(r.stderr).toContain(`could not use ${liar.nodeId}: wrong-hash; trying another member`)
    expect(r.stderr).toContain(`model ${sha256.slice(0, 12)} fetched from ${pool.admin.nodeId} and verified (3.5 MiB)`)
    expect(fs.readFileSync(dest).equals(fs.readFileSync(good))).toBe(true)

    const expected = (await identifyModel({ ...BUNDLED_MODEL, checkpointPath: good })).identity.id
    expect((await callAgent<AgentStatus>(fresh.home, 'GET', '/v1/status')).model).toMatchObject({ id: expected, checkpoint: dest })
    await vi.waitFor(async () => {
      const [report] = await callAgent<RingReport[]>(pool.admin.home, 'GET', '/v1/ring')
      expect(report?.models?.members[fresh.nodeId]).toBe(expected)
    }, { timeout: 10_000, interval: 100 })

    // restarted, it serves the fetched copy at once, checking it against the sha256 again
    process.kill(readPid(fresh.home)!, 'SIGTERM')
    await vi.waitFor(() => { expect(readPid(fresh.home)).toBeUndefined() }, { timeout: 10_000, interval: 50 })
    const again = await mesh(fresh.home, startArgs(2, ['--model-sha256', sha256, '--json']))
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ model: { id: expected, checkpoint: dest } })
  }, 120_000)
})

/** `mesh` with a longer timeout than the helper's: a start that waits for a model fetch. */
async function execMesh (home: string, args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [MESH_JS, ...args], { env: { ...process.env, MESH_HOME: home, MESH_BEACON_INTERFACES: '' }, timeout: 90_000 },
      (err, stdout, stderr) => { resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }) })
  })
}
