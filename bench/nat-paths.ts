/**
 * A 2-member ring (stories260K) on each path across NATs, side by side (root only; network
 * namespaces from test/e2e/nat-lab.ts, real agents, real mesh-relay):
 * - start → ring: both `mesh start`s until both ring files hold both members;
 * - ring → path: until both members' pool-status name the cell's path (for cone ↔ cone that is
 *   the time from relayed to hole-punched);
 * - all-reduce round trip: the leader's network time per all-reduce (2 per layer per step), from
 *   `mesh inference --json`;
 * - tok/s of `mesh inference --max-tokens 128 --temperature 0`, median of the runs.
 * Two cores shared with other work: figures are for comparing the paths with each other.
 *
 *   npm run build && node --import tsx bench/nat-paths.ts [runs=3]
 */
import os from 'node:os'
import { NatLab, natUnavailable, type NatSiteSpec } from '../test/e2e/nat-lab.js'
import { firewallRouters, pathTo, startPair, until } from '../test/e2e/nat-paths.js'
import { installLossTools, netnsUnavailable, type LabNode } from '../test/e2e/netns.js'

const runs = Number(process.argv[2] ?? 3)
const why = netnsUnavailable() ?? installLossTools() ?? natUnavailable()
if (why !== undefined) {
  console.error(`nat-paths bench skipped: ${why}`)
  process.exit(0)
}

const LAYERS = 5 // stories260K
const TOKENS = 128
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN }

interface CellSpec { name: string, path: string, sites: NatSiteSpec[], publicHosts: number, pick: (l: NatLab) => [LabNode, LabNode] }
const cells: CellSpec[] = [
  { name: 'same LAN', path: 'direct-lan', sites: [{ kind: 'cone', members: 2 }], publicHosts: 0, pick: (l) => [l.member(0, 0), l.member(0, 1)] },
  { name: 'public ↔ cone', path: 'direct-wan', sites: [{ kind: 'cone', members: 1 }], publicHosts: 1, pick: (l) => [l.publicHost(0), l.member(0, 0)] },
  { name: 'cone ↔ cone', path: 'hole-punched', sites: [{ kind: 'cone', members: 1 }, { kind: 'cone', members: 1 }], publicHosts: 0, pick: (l) => [l.member(0, 0), l.member(1, 0)] },
  { name: 'symmetric ↔ symmetric', path: 'relayed', sites: [{ kind: 'symmetric', members: 1 }, { kind: 'symmetric', members: 1 }], publicHosts: 0, pick: (l) => [l.member(0, 0), l.member(1, 0)] }
]

interface Row { cell: string, path: string, ringMs: number, pathMs: number, allReduceUs: number, tps: number, note: string }
const rows: Row[] = []

for (const spec of cells) {
  const lab = NatLab.create({ sites: spec.sites, publicHosts: spec.publicHosts })
  try {
    firewallRouters(lab)
    const [a, b] = spec.pick(lab)
    const { pool, ringMs } = await startPair(lab, a, b)
    let note = ''
    const pathMs = await until(async () => await pathTo(lab, a, b, pool) === spec.path && await pathTo(lab, b, a, pool) === spec.path, 90_000, spec.path)
      .catch((err: Error) => { note = `path never ${spec.path}: ${err.message}`; return NaN })
    const tps: number[] = []
    const ar: number[] = []
    for (let i = 0; i < runs + 1; i++) {
      const r = await lab.mesh(b, ['inference', '--prompt', 'Once upon a time', '--max-tokens', String(TOKENS), '--temperature', '0', '--json'], {}, 300_000)
      if (r.code !== 0) { note = `inference failed: ${r.stderr.trim().split('\n').pop() ?? ''}`; break }
      const j = JSON.parse(r.stdout) as { tokens_per_second: number, generated_tokens: number, members: Array<{ leader: boolean, network_ms: number }> }
      if (i === 0) continue // warm-up: links and caches
      tps.push(j.tokens_per_second)
      const leader = j.members.find((m) => m.leader)
      if (leader !== undefined) ar.push(leader.network_ms * 1000 / (2 * LAYERS * (j.generated_tokens + 1)))
    }
    rows.push({ cell: spec.name, path: spec.path, ringMs, pathMs, allReduceUs: median(ar), tps: median(tps), note })
  } finally {
    lab.destroy()
  }
}

console.log(`nat-paths: 2 members of stories260K, ${TOKENS} tokens, median of ${runs} runs after a warm-up; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`)
console.log(['cell', 'path', 'start→ring ms', 'ring→path ms', 'all-reduce µs', 'tok/s', ''].join('\t'))
for (const r of rows) console.log([r.cell, r.path, Math.round(r.ringMs), Number.isNaN(r.pathMs) ? '-' : Math.round(r.pathMs), Math.round(r.allReduceUs), r.tps.toFixed(1), r.note].join('\t'))
