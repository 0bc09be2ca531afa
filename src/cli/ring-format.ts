import { matchModel, shortModelId } from '../ring/model-match.js'
import type { RingReport } from '../agent/net/pool-ring.js'
import type { ShardUnits } from '../inference/shard.js'

function ago (ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 120) return `${s}s ago`
  if (s < 7200) return `${Math.round(s / 60)}m ago`
  return `${Math.round(s / 3600)}h ago`
}

function table (rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n')
}

/** What a member computes of the model: heads, FFN units and classifier rows, or none (it still passes the all-reduces). */
function unitsCell (u: ShardUnits | undefined): string {
  if (u === undefined) return '?'
  if (u.queryHeads === 0 && u.hidden === 0 && (u.classifierRows ?? 0) === 0) return 'none (share too small)'
  return `${u.queryHeads} heads, ${u.hidden} ffn${u.classifierRows === undefined ? '' : `, ${u.classifierRows} vocab rows`}`
}

/** A member's MODEL and JOBS cells: excluded members say why. */
function modelCells (ours: string, theirs: string | undefined): [string, string] {
  const match = matchModel(ours, theirs)
  return [theirs === undefined ? '?' : shortModelId(theirs), match.serves ? 'yes' : `excluded: ${match.text}`]
}

/** Human text: a header line per pool, then its members in ring order with their column ranges. */
export function formatRingReports (reports: readonly RingReport[]): string {
  if (reports.length === 0) return 'no rings: this device holds no pool certificate yet (see mesh pool-status)'
  return reports.map((r) => {
    const t = r.topology
    const converged = r.converged === null ? 'unknown (agent not running)' : r.converged ? 'yes' : 'no'
    const head = [
      `pool ${r.poolId.slice(0, 16)} (${r.poolName})`,
      `epoch ${t.epoch}`,
      `hash ${t.hash.slice(0, 12)}`,
      `${t.members.length} member${t.members.length === 1 ? '' : 's'}`,
      `shards ${t.shardMode}`,
      `converged: ${converged}`,
      `changed ${ago(r.ageMs)}`
    ].join('  ')
    const models = r.models
    const units = r.units
    const rows = [['POS', 'NODE ID', 'NAME', 'COLUMNS', 'SHARE', ...(units === undefined ? [] : ['UNITS']), 'STATUS', ...(models === undefined ? [] : ['MODEL', 'JOBS']), 'ADDRESS'],
      ...t.members.map((m) => [
        String(m.position), m.nodeId, m.name, `[${m.start}, ${m.end})`,
        `${(((m.end - m.start) / t.columns) * 100).toFixed(1)}%`,
        ...(units === undefined ? [] : [unitsCell(units[m.nodeId])]),
        m.status.toUpperCase(),
        ...(models === undefined ? [] : modelCells(models.self, models.members[m.nodeId] ?? undefined)),
        m.addresses[0] ?? ''
      ])]
    const serving = models === undefined ? '' : `\nthis device serves model ${shortModelId(models.self)}; JOBS says who takes part in its jobs`
    return `${head}${serving}\n${table(rows)}`
  }).join('\n\n')
}
