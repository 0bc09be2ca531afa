import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest'
import { readTopology } from '../../src/ring/topology.js'
import { NetnsLab, netnsUnavailable, type LabNode } from './netns.js'

const CONTROL_PLANE_JS = fileURLToPath(new URL('../../dist/control-plane/main.js', import.meta.url))

const why = netnsUnavailable()
if (why !== undefined) console.warn(`SKIPPED no-multicast e2e tests: ${why}`)

/** A LAN whose bridge carries no multicast at all: beacons never arrive, unicast works. */
describe.skipIf(why !== undefined)('a LAN without multicast', () => {
  let lab: NetnsLab
  let admin: LabNode
  let member: LabNode
  let poolId = ''

  beforeAll(async () => {
    lab = NetnsLab.create(2)
    admin = lab.node(0); member = lab.node(1)
    lab.blockMulticast()
    await lab.meshOk(admin, ['init', '--network-id', 'lab', '--name', 'admin'])
    const pool = JSON.parse(await lab.meshOk(admin, ['pool-create', '--json', '--name', 'lab'])) as { poolId: string, rootPublicKey: string, joinToken: string }
    poolId = pool.poolId
    await lab.meshOk(member, ['init', '--network-id', 'lab', '--name', 'member'])
    await lab.meshOk(member, ['pool-join', '--pool-id', pool.poolId, '--pool-root-pubkey', pool.rootPublicKey, '--name', 'lab', '--token', pool.joinToken])
  }, 120_000)

  afterAll(() => { lab?.destroy() })

  const ringOf = (n: LabNode): string[] => readTopology(n.home, poolId)?.members.map((m) => m.name).sort() ?? []

  it('with --bootstrap ADMIN the member gets its certificate by unicast beacons and joins the ring', async () => {
    onTestFailed(() => { console.error(lab.logs()) })
    await lab.meshOk(admin, ['start'])
    const t0 = performance.now()
    await lab.meshOk(member, ['start', '--bootstrap', admin.address])
    await vi.waitFor(() => {
      expect(ringOf(admin)).toEqual(['admin', 'member'])
      expect(ringOf(member)).toEqual(['admin', 'member'])
    }, { timeout: 60_000, interval: 50 })
    console.log(`no-multicast e2e: member start --bootstrap → certificate and ring of 2 in ${Math.round(performance.now() - t0)} ms`)
    // nothing came by multicast: every beacon the member accepted was unicast
    const peers = JSON.parse(await lab.meshOk(member, ['pool-peers', '--json', '--pool-id', poolId])) as Array<{ name: string, status: string }>
    expect(peers.map((p) => [p.name, p.status])).toEqual([['admin', 'ONLINE']])
  }, 120_000)

  it('with --control-plane and nothing else the members find each other again', async () => {
    onTestFailed(() => { console.error(lab.logs()) })
    await lab.meshOk(member, ['stop'])
    await lab.meshOk(admin, ['stop'])
    // forget every address learned before: only the control plane can tell them now
    for (const n of [admin, member]) {
      fs.rmSync(path.join(n.home, 'peers.json'), { force: true })
      fs.rmSync(path.join(n.home, `ring_topology_${poolId}.json`), { force: true })
    }
    const cp = spawn('ip', ['netns', 'exec', admin.ns, process.execPath, CONTROL_PLANE_JS, '--home', path.join(lab.dir, 'cp'), '--json', '--port', '8080'], { stdio: ['ignore', 'pipe', 'pipe'] })
    await new Promise((resolve, reject) => { cp.stdout.once('data', resolve); cp.once('exit', reject) })
    const url = `http://${admin.address}:8080`
    const t0 = performance.now()
    await lab.meshOk(admin, ['start', '--control-plane', url])
    await lab.meshOk(member, ['start', '--control-plane', url])
    await vi.waitFor(() => {
      expect(ringOf(admin)).toEqual(['admin', 'member'])
      expect(ringOf(member)).toEqual(['admin', 'member'])
    }, { timeout: 60_000, interval: 50 })
    console.log(`no-multicast e2e: restart with --control-plane only → ring of 2 in ${Math.round(performance.now() - t0)} ms`)
    // the control plane's ring and the gossip ring agree
    await vi.waitFor(async () => {
      const s = JSON.parse(await lab.meshOk(member, ['pool-status', '--json'])) as { agent: { controlPlane: { pools: Array<{ hash: string }> } }, pools: Array<{ ring: { hash: string } }> }
      expect(s.agent.controlPlane.pools[0]?.hash).toBe(s.pools[0]?.ring.hash)
    }, { timeout: 30_000, interval: 500 })
  }, 180_000)
})
