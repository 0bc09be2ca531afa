import fs from 'node:fs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { RingReport } from '../../src/agent/net/pool-ring.js'
import { readPid } from '../../src/agent/pidfile.js'
import { readTopology, topologyContent } from '../../src/ring/topology.js'
import { killAgents, logOf, mesh, startAgents } from '../helpers/agent-procs.js'
import { tempRoot, testPool, type TestDevice } from '../helpers/pools.js'

const homes: string[] = []
const dirs: string[] = []
afterEach(() => {
  killAgents(homes.splice(0))
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

async function ring (home: string): Promise<RingReport[]> {
  const r = await mesh(home, ['ring-status', '--json'])
  if (r.code !== 0) throw new Error(`ring-status failed: ${r.stderr}`)
  return JSON.parse(r.stdout) as RingReport[]
}


describe('agents form a ring (child processes on 127.0.0.1)', () => {
  it('three agents converge; ring-status shows it; kill -9 and graceful stop take members out', async () => {
    const root = tempRoot(); dirs.push(root)
    const pool = testPool(root, ['admin', 'm1', 'm2'])
    const devs = [pool.admin, ...pool.members]
    await startAgents(devs.map((d) => d.home), homes)
    // the topology files are what other programs read: wait on them, then ask the agents
    const membersIn = (d: TestDevice): string[] => readTopology(d.home, pool.poolId)?.members.map((m) => m.nodeId) ?? []
    await vi.waitFor(() => {
      for (const d of devs) expect(membersIn(d)).toHaveLength(3)
      expect(new Set(devs.map((d) => topologyContent(readTopology(d.home, pool.poolId)!))).size).toBe(1)
    }, { timeout: 30_000, interval: 100 })
    // ask the agents directly (a `mesh` process per poll is slow on a busy machine)
    await vi.waitFor(async () => {
      for (const d of devs) expect((await callAgent<RingReport[]>(d.home, 'GET', '/v1/ring'))[0]?.converged).toBe(true)
    }, { timeout: 10_000, interval: 100 })
    expect(await ring(pool.members[0]!.home)).toMatchObject([{ poolId: pool.poolId, source: 'live', converged: true }])

    const text = await mesh(pool.admin.home, ['ring-status'])
    expect(text.stdout).toMatch(/epoch \d+ {2}hash [0-9a-f]{12} {2}3 members {2}shards even {2}converged: yes/)
    expect(text.stdout).toContain('[0, 2731)')

    // kill -9: no goodbye; the others' timers take it out (LAN defaults: within ~6 s; bench/ measures it)
    const victim = pool.members[1]!
    process.kill(readPid(victim.home)!, 'SIGKILL')
    await vi.waitFor(() => {
      for (const d of devs.slice(0, 2)) expect(membersIn(d)).not.toContain(victim.nodeId)
    }, { timeout: 15_000, interval: 50 })

    // graceful stop: dropped at once, long before the offline timer
    const leaver = pool.members[0]!
    process.kill(readPid(leaver.home)!, 'SIGTERM')
    await vi.waitFor(() => { expect(membersIn(pool.admin)).toHaveLength(1) }, { timeout: 10_000, interval: 20 })
    expect(logOf(pool.admin.home)).toMatch(new RegExp(`"nodeId":"${leaver.nodeId}","epoch":\\d+,"cause":"left","msg":"member left the ring"`))
    expect(logOf(pool.admin.home)).toMatch(new RegExp(`"nodeId":"${victim.nodeId}","epoch":\\d+,"cause":"timeout","msg":"member left the ring"`))
    await vi.waitFor(() => { expect(readPid(leaver.home)).toBeUndefined() }, { timeout: 10_000, interval: 50 })

    // with the agent stopped, ring-status shows the last ring written
    const offline = await mesh(leaver.home, ['ring-status'])
    expect(offline.code).toBe(0)
    expect(offline.stdout).toMatch(/^the agent is not running/)
  }, 120_000)
})
