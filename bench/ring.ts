/**
 * Ring timings in network namespaces (root only), real agents, real multicast, LAN defaults:
 * - pool-join → ring-ready: a new device's `mesh pool-join` + `mesh start` until its ring file and the
 *   admin's show the same ring with it (certificate issued over beacons on the way);
 * - join → ring-ready: `mesh start` of a member that already holds a certificate (a restart) until
 *   its file and every other member's show the same ring;
 * - failure detection: kill -9 of a member until it is out of every other member's ring file;
 * - N-member convergence: all members started at once until every file shows the same N-ring.
 * Times from invoking `mesh` include process start-up; "after up" starts when `mesh start` returned.
 * With RING_BENCH_LOSS=0.05 every node drops that share of the packets it receives (iptables
 * statistic match) from the first kill on.
 *
 *   npm run build && node --import tsx bench/ring.ts [members=4] [kills=10]
 */
import os from 'node:os'
import { readPid } from '../src/agent/pidfile.js'
import { readTopology, topologyContent } from '../src/ring/topology.js'
import { until } from '../test/e2e/lan-join.js'
import { lossUnavailable, NetnsLab, netnsUnavailable, type LabNode } from '../test/e2e/netns.js'

const members = Number(process.argv[2] ?? 4)
const kills = Number(process.argv[3] ?? 10)
const loss = Number(process.env.RING_BENCH_LOSS ?? 0)
const why = netnsUnavailable() ?? (loss > 0 ? lossUnavailable() : undefined)
if (why !== undefined) {
  console.error(`ring bench skipped: ${why}`)
  process.exit(0)
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] as number }
/** nearest-rank percentile: with 10 samples p99 is the largest */
const percentile = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)] as number }
const fmt = (xs: number[]): string => `median ${Math.round(median(xs))} ms, p99 ${Math.round(percentile(xs, 99))} ms (min ${Math.round(Math.min(...xs))}, max ${Math.round(Math.max(...xs))}, n=${xs.length})`

const lab = NetnsLab.create(members + 1)
let poolId = ''
const ids = new Map<LabNode, string>()
const ring = (n: LabNode): string[] => { try { return readTopology(n.home, poolId)?.members.map((m) => m.nodeId) ?? [] } catch { return [] } }
const content = (n: LabNode): string => { try { const t = readTopology(n.home, poolId); return t === undefined ? '' : topologyContent(t) } catch { return '' } }
/** every node in `nodes` shows the same ring, of exactly `expect` */
const agreed = (nodes: LabNode[], expect: LabNode[]): boolean => {
  const want = expect.map((n) => ids.get(n)).sort().join()
  return nodes.every((n) => ring(n).sort().join() === want) && new Set(nodes.map(content)).size === 1
}
async function mesh (n: LabNode, args: string[]): Promise<string> {
  const r = await lab.mesh(n, args, {}, 120_000)
  if (r.code !== 0) throw new Error(`mesh ${args.join(' ')} on ${n.name}: ${r.stderr.trim()}`)
  return r.stdout
}

try {
  const nodes = lab.nodes
  const [admin, ...rest] = nodes as [LabNode, ...LabNode[]]
  for (const [i, n] of nodes.entries()) ids.set(n, (JSON.parse(await mesh(n, ['init', '--json', '--network-id', 'lab', '--name', `dev${i}`])) as { nodeId: string }).nodeId)
  const pool = JSON.parse(await mesh(admin, ['pool-create', '--json', '--name', 'lab'])) as { poolId: string, rootPublicKey: string, joinToken: string }
  poolId = pool.poolId
  await mesh(admin, ['start'])

  const joinToReady: number[] = []
  const live: LabNode[] = [admin]
  for (const n of rest) {
    const t0 = performance.now()
    await mesh(n, ['pool-join', '--pool-id', pool.poolId, '--pool-root-pubkey', pool.rootPublicKey, '--name', 'lab', '--token', pool.joinToken])
    await mesh(n, ['start'])
    live.push(n)
    await until(async () => agreed(live, live), 60_000, `${n.name} in the ring`)
    joinToReady.push(performance.now() - t0)
  }

  if (loss > 0) for (const n of nodes) lab.setLoss(n, loss) // iptables only when asked for loss
  const detect: number[] = []
  const restart: number[] = []
  const restartAfterUp: number[] = []
  for (let k = 0; k < kills; k++) {
    const victim = rest[k % rest.length] as LabNode
    const others = nodes.filter((n) => n !== victim)
    process.kill(readPid(victim.home) as number, 'SIGKILL')
    const t0 = performance.now()
    await until(async () => others.every((n) => !ring(n).includes(ids.get(victim) as string)), 60_000, 'the killed member out of every ring')
    detect.push(performance.now() - t0)
    const t1 = performance.now()
    await mesh(victim, ['start'])
    const up = performance.now()
    await until(async () => agreed(nodes, nodes), 60_000, 'the restarted member back in every ring')
    restart.push(performance.now() - t1); restartAfterUp.push(performance.now() - up)
  }

  const together: number[] = []
  for (let r = 0; r < 3; r++) {
    await Promise.all(rest.map(async (n) => await mesh(n, ['stop'])))
    await until(async () => agreed([admin], [admin]), 30_000, 'the admin alone')
    const t0 = performance.now()
    await Promise.all(rest.map(async (n) => await mesh(n, ['start'])))
    await until(async () => agreed(nodes, nodes), 60_000, `${nodes.length} members converged`)
    together.push(performance.now() - t0)
  }

  console.log(`ring bench: ${nodes.length} agents in netns, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load ${os.loadavg()[0]?.toFixed(1)}, LAN liveness defaults${loss > 0 ? `, ${loss * 100} % packet loss from the first kill on` : ''}`)
  console.log(`  pool-join → ring-ready (new device):            ${fmt(joinToReady)}`)
  console.log(`  mesh start → ring-ready (certified, restart):   ${fmt(restart)}; after start returned ${fmt(restartAfterUp)}`)
  console.log(`  kill -9 → out of every ring:                    ${fmt(detect)}`)
  console.log(`  ${nodes.length} members started at once → converged:   ${fmt(together)}`)
} finally {
  lab.destroy()
}
