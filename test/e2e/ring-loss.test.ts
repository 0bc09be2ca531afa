import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { readTopology, topologyContent } from '../../src/ring/topology.js'
import { installLossTools, NetnsLab, netnsUnavailable, type LabNode } from './netns.js'

/**
 * Opt-in (it runs for minutes): MESH_LOSS_TEST_SECONDS=120 npx vitest run test/e2e/ring-loss.test.ts
 * Four agents in network namespaces, every node dropping 5 % of the packets it receives (iptables
 * statistic match: this kernel has no netem) for the given time. No member may leave any ring.
 */
const seconds = Number(process.env.MESH_LOSS_TEST_SECONDS ?? 0)
function why (): string | undefined {
  if (!(seconds > 0)) return 'opt-in: set MESH_LOSS_TEST_SECONDS=120 to run the 5 % packet loss test (two minutes plus set-up)'
  const ns = netnsUnavailable()
  if (ns !== undefined) return ns
  // the test set-up may install iptables (Debian); anything else is a clear skip
  return installLossTools()
}
const skip = why()
if (skip !== undefined) console.warn(`SKIPPED ring loss e2e test: ${skip}`)

const LOSS = 0.05

describe.skipIf(skip !== undefined)('ring under 5 % packet loss', () => {
  let lab: NetnsLab
  let poolId = ''
  const membersOf = (n: LabNode): string[] => { try { return readTopology(n.home, poolId)?.members.map((m) => m.nodeId) ?? [] } catch { return [] } }

  async function meshOk (n: LabNode, args: string[]): Promise<string> {
    const r = await lab.mesh(n, args, {}, 120_000)
    if (r.code !== 0) throw new Error(`mesh ${args.join(' ')} on ${n.name} exited ${r.code}: ${r.stderr.trim()}`)
    return r.stdout
  }

  beforeAll(async () => {
    lab = NetnsLab.create(4)
    const [admin, ...members] = lab.nodes as [LabNode, ...LabNode[]]
    for (const [i, n] of lab.nodes.entries()) await meshOk(n, ['init', '--network-id', 'lab', '--name', `dev${i}`])
    const created = JSON.parse(await meshOk(admin, ['pool-create', '--json', '--name', 'lab'])) as { poolId: string, rootPublicKey: string, joinToken: string }
    poolId = created.poolId
    for (const n of members) {
      await meshOk(n, ['pool-join', '--pool-id', poolId, '--pool-root-pubkey', created.rootPublicKey, '--name', 'lab', '--token', created.joinToken])
    }
    for (const n of lab.nodes) await meshOk(n, ['start'])
    await vi.waitFor(() => {
      for (const n of lab.nodes) expect(membersOf(n)).toHaveLength(4)
      expect(new Set(lab.nodes.map((n) => topologyContent(readTopology(n.home, poolId)!))).size).toBe(1)
    }, { timeout: 120_000, interval: 200 })
  }, 300_000)

  afterAll(() => { lab?.destroy() })

  it(`no member is evicted in ${seconds} s at 5 % loss`, async () => {
    for (const n of lab.nodes) lab.setLoss(n, LOSS)
    const t0 = Date.now()
    const shrunk: string[] = []
    while (Date.now() - t0 < seconds * 1000) {
      for (const n of lab.nodes) {
        const size = membersOf(n).length
        if (size !== 4) shrunk.push(`${n.name} saw ${size} members at +${Date.now() - t0} ms`)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const dropped = lab.nodes.map((n) => lab.droppedPackets(n))
    for (const n of lab.nodes) lab.setLoss(n, 0)
    // the logs catch what polling could miss: every ring change names who left and why
    const left = lab.nodes.flatMap((n) => fs.readFileSync(path.join(n.home, 'logs', 'agent.log'), 'utf8').split('\n')
      .filter((l) => l.includes('"member left the ring"') && (JSON.parse(l) as { time: number }).time >= t0)
      .map((l) => `${n.name}: ${l}`))
    console.log(`ring loss e2e: ${seconds} s at ${LOSS * 100} % loss, packets dropped per node ${dropped.join(', ')}; ` +
      `${left.length} evictions, ${shrunk.length} polls with a smaller ring`)
    expect(dropped.every((d) => d > 0)).toBe(true)
    expect(left).toEqual([])
    expect(shrunk).toEqual([])
  }, (seconds + 60) * 1000)
})
