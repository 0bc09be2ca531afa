import fs from 'node:fs'
import { afterEach, describe, expect, it, onTestFailed, vi } from 'vitest'
import type { AgentStatus } from '../../src/agent/agent.js'
import { callAgent } from '../../src/agent/api/client.js'
import { readTopology } from '../../src/ring/topology.js'
import { freeUdpPort, killAgents, logOf, mesh } from '../helpers/agent-procs.js'
import { startControlPlane, type RunningControlPlane } from '../helpers/control-plane.js'
import { tempRoot, testPool, type TestDevice } from '../helpers/pools.js'

const homes: string[] = []
const dirs: string[] = []
const planes: RunningControlPlane[] = []
afterEach(async () => {
  killAgents(homes.splice(0))
  for (const p of planes.splice(0)) await p.stop()
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

/** Each agent on its own beacon port with no multicast interface: alone, none hears another. */
async function start (devs: TestDevice[], extra: (i: number, ports: number[]) => string[]): Promise<void> {
  const ports = await Promise.all(devs.map(async () => await freeUdpPort()))
  for (const [i, d] of devs.entries()) {
    homes.push(d.home)
    const r = await mesh(d.home, ['start', '--beacon-port', String(ports[i]), ...extra(i, ports)])
    if (r.code !== 0) throw new Error(`start failed: ${r.stderr}\n${logOf(d.home)}`)
  }
}

const status = async (d: TestDevice): Promise<AgentStatus> => await callAgent<AgentStatus>(d.home, 'GET', '/v1/status')

describe('mesh start --control-plane (agents and mesh-control-plane as child processes on 127.0.0.1)', () => {
  it('members that hear no beacon find each other through the control plane and form the gossip ring', async () => {
    const root = tempRoot(); dirs.push(root)
    const pool = testPool(root, ['admin', 'm1'])
    const devs = [pool.admin, ...pool.members]
    onTestFailed(() => { for (const d of devs) console.error(`===== ${d.name}\n${logOf(d.home).slice(-10_000)}`) })
    const cp = await startControlPlane(`${root}/cp`, ['--port', '0']); planes.push(cp)
    await start(devs, () => ['--control-plane', cp.url])
    await vi.waitFor(() => {
      for (const d of devs) expect(readTopology(d.home, pool.poolId)?.members).toHaveLength(2)
    }, { timeout: 30_000, interval: 100 })
    // the ring the control plane computes is the gossip ring: same members, columns and hash
    await vi.waitFor(async () => {
      for (const d of devs) {
        const s = await status(d)
        const gossip = s.pools.find((p) => p.poolId === pool.poolId)?.ring
        const http = s.controlPlane?.pools.find((p) => p.poolId === pool.poolId)
        expect(http?.members).toBe(2)
        expect(http?.hash).toBe(gossip?.hash)
      }
    }, { timeout: 15_000, interval: 100 })
  }, 90_000)

  it('with the control plane gone the agent keeps its gossip ring and says why in its status', async () => {
    const root = tempRoot(); dirs.push(root)
    const pool = testPool(root, ['admin', 'm1'])
    const devs = [pool.admin, ...pool.members]
    // unicast beacons to each other: gossip works without the control plane
    await start(devs, (i, ports) => ['--bootstrap', `127.0.0.1:${ports[1 - i] ?? 0}`, '--control-plane', 'http://127.0.0.1:9'])
    await vi.waitFor(() => {
      for (const d of devs) expect(readTopology(d.home, pool.poolId)?.members).toHaveLength(2)
    }, { timeout: 30_000, interval: 100 })
    const http = (await status(pool.admin)).controlPlane
    expect(http?.url).toBe('http://127.0.0.1:9')
    await vi.waitFor(async () => {
      expect((await status(pool.admin)).controlPlane?.pools[0]?.error).toMatch(/^control plane http:\/\/127\.0\.0\.1:9 did not answer/)
    }, { timeout: 15_000, interval: 100 })
  }, 90_000)

  it('refuses a control plane that is not an http(s) URL before starting anything', async () => {
    const root = tempRoot(); dirs.push(root)
    const pool = testPool(root, ['admin'])
    const r = await mesh(pool.admin.home, ['start', '--control-plane', 'ftp://x'])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe('mesh: control plane "ftp://x" is not an http(s)://HOST:PORT URL (mesh-control-plane prints it, e.g. http://192.168.1.10:8080)\n')
    expect(fs.existsSync(`${pool.admin.home}/run/agent.pid`)).toBe(false)
  })
})
