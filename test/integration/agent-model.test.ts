import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { AgentStatus } from '../../src/agent/agent.js'
import type { RingReport } from '../../src/agent/net/pool-ring.js'
import { readPid } from '../../src/agent/pidfile.js'
import { BUNDLED_MODEL, identifyModel } from '../../src/inference/served.js'
import { parseShape, writeSyntheticCheckpoint } from '../../src/inference/synth.js'
import { freeUdpPort, killAgents, logOf, mesh } from '../helpers/agent-procs.js'
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
      [['--model', path.join(root, 'nope.bin')], /^mesh: checkpoint \S+nope\.bin does not exist\n$/],
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
  }, 60_000)

  it('announces the model in heartbeats; ring-status shows a member with another model as excluded', async () => {
    const root = tempRoot(); dirs.push(root)
    const pool = testPool(root, ['admin', 'other'])
    const other = path.join(root, 'other.bin')
    await writeSyntheticCheckpoint(other, parseShape('dim=32,hidden=64,layers=2,heads=4,kv_heads=2,vocab=512,seq_len=64'), 0, 3n)
    await startAll([{ dev: pool.admin, args: [] }, { dev: pool.members[0]!, args: ['--model', other] }])
    const bundled = (await identifyModel(BUNDLED_MODEL)).identity.id
    const otherId = (await identifyModel({ ...BUNDLED_MODEL, checkpointPath: other })).identity.id
    expect((await callAgent<AgentStatus>(pool.admin.home, 'GET', '/v1/status')).model.id).toBe(bundled)
    expect((await callAgent<AgentStatus>(pool.members[0]!.home, 'GET', '/v1/status')).model).toMatchObject({ id: otherId, checkpoint: other })

    const adminId = pool.admin.nodeId
    const memberId = pool.members[0]!.nodeId
    await vi.waitFor(async () => {
      const [report] = await callAgent<RingReport[]>(pool.admin.home, 'GET', '/v1/ring')
      expect(report?.models).toEqual({ self: bundled, members: { [adminId]: bundled, [memberId]: otherId } })
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
