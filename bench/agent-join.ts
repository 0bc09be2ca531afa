/**
 * Join-to-ring-ready in network namespaces (root only), two real agents on a bridge, LAN defaults.
 * Each run: a fresh lab; the admin runs `init`, `pool-create`, `start`.
 * - new device: the member's `init` is done; timed from invoking `mesh pool-join --start` (one CLI
 *   run records the pool and starts the agent) until both ring_topology files show the same
 *   two-member ring (certificate over beacons on the way);
 * - certified member: the member runs `mesh stop`, the admin's ring shrinks to itself; timed from
 *   invoking `mesh start` until both files show the same two-member ring again.
 * Besides the total, the median time of each start-up event after the timer started, read from the
 * agents' logs (same machine, same wall clock), shows where the time goes.
 *
 *   npm run build && node --import tsx bench/agent-join.ts [runs=5]
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { readTopology, topologyContent } from '../src/ring/topology.js'
import { createAdmin, type CreatedPool, until } from '../test/e2e/lan-join.js'
import { NetnsLab, netnsUnavailable, type LabNode } from '../test/e2e/netns.js'

const runs = Number(process.argv[2] ?? 5)
const why = netnsUnavailable()
if (why !== undefined) {
  console.error(`agent-join bench skipped: ${why}`)
  process.exit(0)
}

interface LogLine { time: number, msg: string, nodeId?: string, processStartedAt?: number, importsDoneAt?: number }
const logLines = (n: LabNode, since: number): LogLine[] => {
  const file = path.join(n.home, 'logs', 'agent.log')
  if (!fs.existsSync(file)) return []
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogLine).filter((l) => l.time >= since)
}

/** Both ring files show the same ring of both nodes. */
function ringReady (a: LabNode, b: LabNode, poolId: string): boolean {
  try {
    const [ta, tb] = [readTopology(a.home, poolId), readTopology(b.home, poolId)]
    return ta !== undefined && tb !== undefined && ta.members.length === 2 && topologyContent(ta) === topologyContent(tb)
  } catch { return false }
}

/** Start-up events, in the order they happen, as ms after t0 (undefined when not logged). */
function events (admin: LabNode, member: LabNode, t0: number, returned: number, ready: number): Map<string, number | undefined> {
  const m = logLines(member, t0)
  const a = logLines(admin, t0)
  const up = m.find((l) => l.msg === 'agent process up')
  const started = m.find((l) => l.msg === 'agent started')
  const self = started?.nodeId
  const at = (l: LogLine | undefined): number | undefined => l === undefined ? undefined : l.time - t0
  return new Map([
    ['agent process started', up?.processStartedAt === undefined ? undefined : up.processStartedAt - t0],
    ['agent imports done', up?.importsDoneAt === undefined ? undefined : up.importsDoneAt - t0],
    ['pool network started', at(m.find((l) => l.msg === 'pool network started'))],
    ['agent API up', at(started)],
    ['the CLI returned (agent up)', returned - t0],
    ['certificate installed', at(m.find((l) => l.msg === 'certificate installed'))],
    ['admin admitted the member', at(a.find((l) => l.msg === 'peer admitted'))],
    ['admin in the member\'s ring', at(m.find((l) => l.msg === 'member joined the ring' && l.nodeId !== self))],
    ['member in the admin\'s ring', at(a.find((l) => l.msg === 'member joined the ring' && l.nodeId === self))],
    ['both files agree (ring-ready)', ready - t0]
  ])
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] as number }
const samples = { 'new device (pool-join --start → ring-ready)': [] as Array<Map<string, number | undefined>>, 'certified member (mesh start → ring-ready)': [] as Array<Map<string, number | undefined>> }
const loads: number[] = []

for (let i = 0; i < runs; i++) {
  const lab = NetnsLab.create(2)
  try {
    const [admin, member] = [lab.node(0), lab.node(1)]
    const pool: CreatedPool = await createAdmin(lab, admin)
    await lab.meshOk(member, ['init', '--network-id', 'lab', '--name', `member-${member.name}`])
    loads.push(os.loadavg()[0] ?? 0)

    let t0 = Date.now()
    await lab.meshOk(member, ['pool-join', '--pool-id', pool.poolId, '--pool-root-pubkey', pool.rootPublicKey, '--name', 'lab-pool', '--token', pool.joinToken, '--start'])
    let returned = Date.now()
    await until(async () => ringReady(admin, member, pool.poolId), 60_000, 'the new member in both rings')
    samples['new device (pool-join --start → ring-ready)'].push(events(admin, member, t0, returned, Date.now()))

    await lab.meshOk(member, ['stop'])
    await until(async () => readTopology(admin.home, pool.poolId)?.members.length === 1, 30_000, 'the admin alone')
    t0 = Date.now()
    await lab.meshOk(member, ['start'])
    returned = Date.now()
    await until(async () => ringReady(admin, member, pool.poolId), 60_000, 'the restarted member in both rings')
    const ev = events(admin, member, t0, returned, Date.now())
    samples['certified member (mesh start → ring-ready)'].push(ev)
    console.error(`run ${i + 1}: new device ${samples['new device (pool-join --start → ring-ready)'].at(-1)?.get('both files agree (ring-ready)')} ms, certified ${ev.get('both files agree (ring-ready)')} ms`)
  } finally {
    lab.destroy()
  }
}

console.log(`agent-join, ${runs} runs, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load average ${loads.map((l) => l.toFixed(1)).join(', ')}`)
for (const [what, runsOf] of Object.entries(samples)) {
  console.log(`${what}: median ms after the timer started`)
  for (const name of runsOf[0]?.keys() ?? []) {
    const xs = runsOf.map((r) => r.get(name)).filter((x): x is number => x !== undefined)
    if (xs.length === 0) continue
    console.log(`  ${name.padEnd(32)} ${String(Math.round(median(xs))).padStart(6)}   (${xs.map((x) => Math.round(x)).join(', ')})`)
  }
}
