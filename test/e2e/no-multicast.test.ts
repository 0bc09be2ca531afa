import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest'
import { readTopology } from '../../src/ring/topology.js'
import { NetnsLab, netnsUnavailable, type LabNode } from './netns.js'

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
})
