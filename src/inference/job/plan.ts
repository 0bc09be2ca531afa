import { RING_COLUMNS } from '../shard.js'

/** A ring member as a job sees it: its node id and its ring column range [start, end). */
export interface JobMember {
  readonly nodeId: string
  readonly start: number
  readonly end: number
}

export interface PlannedMember<S> extends JobMember {
  readonly shard: S
}

/**
 * How a model is split by ring columns: the shard a column range maps to (a pure function of the
 * model's shape, so leader and members plan alike), and what a shard holds, for the job's stats.
 */
export interface Sharding<S> {
  readonly shardOf: (start: number, end: number) => S
  /** the leader's extra work per token (embedding lookup aside: the classifier) as a fraction of all layers' work */
  readonly leaderCost: number
  readonly units: (s: S) => { readonly heads: number, readonly hiddenUnits: number }
}

/** Members whose ranges do not tile the ring's columns in order. */
export class JobPlanError extends RangeError {}

/**
 * The shards of a job: every member in ring order with its column range mapped onto the model's
 * units. The ranges must tile [0, 8192) in order, so every unit goes to exactly one member; a
 * member whose share rounds to nothing keeps an empty shard and still takes part.
 */
export function planJob<S> (sharding: Sharding<S>, members: readonly JobMember[]): Array<PlannedMember<S>> {
  if (members.length === 0) throw new JobPlanError('a job needs at least one member')
  let at = 0
  const seen = new Set<string>()
  for (const m of members) {
    if (m.start !== at || m.end <= m.start) throw new JobPlanError(`member ${m.nodeId} owns [${m.start}, ${m.end}); the next range must start at ${at}`)
    if (seen.has(m.nodeId)) throw new JobPlanError(`member ${m.nodeId} appears twice`)
    seen.add(m.nodeId)
    at = m.end
  }
  if (at !== RING_COLUMNS) throw new JobPlanError(`the ranges end at column ${at}, not ${RING_COLUMNS}`)
  return members.map((m) => ({ ...m, shard: sharding.shardOf(m.start, m.end) }))
}

/**
 * The same members, in the same order, with the columns split evenly again: for a job that leaves
 * out ring members (a different model, a refusal), so the ranges still tile the ring.
 */
export function evenRanges (nodeIds: readonly string[]): JobMember[] {
  const n = nodeIds.length
  return nodeIds.map((nodeId, i) => ({ nodeId, start: Math.floor((i * RING_COLUMNS) / n), end: Math.floor(((i + 1) * RING_COLUMNS) / n) }))
}

/**
 * The same members with the leader's range narrowed so that its layers plus the classifier take
 * as long as another member's layers: with members' widths w (their ring share) and the
 * classifier costing `cost` of all layers, member i gets w_i·(1 + cost), the leader that minus
 * `cost` (never below one column: it still takes part). Every member then finishes a token
 * together, instead of the others waiting out the classifier at the next layer's all-reduce.
 * Members plan from the ranges the job-open names, so only the leader decides this.
 */
export function lightenLeader (members: readonly JobMember[], leader: string, cost: number): JobMember[] {
  const i0 = members.findIndex((m) => m.nodeId === leader)
  if (members.length < 2 || i0 < 0 || !(cost > 0)) return [...members]
  const share = members.map((m) => (m.end - m.start) / RING_COLUMNS)
  const want = share.map((w, i) => i === i0 ? Math.max(0, w * (1 + cost) - cost) : w * (1 + cost))
  const total = want.reduce((a, b) => a + b, 0)
  // cumulative rounding tiles [0, 8192) exactly; each member keeps at least one column
  let at = 0
  let acc = 0
  return members.map((m, i) => {
    acc += want[i] / total
    const left = members.length - 1 - i
    const end = i === members.length - 1 ? RING_COLUMNS : Math.min(RING_COLUMNS - left, Math.max(at + 1, Math.round(acc * RING_COLUMNS)))
    const r = { nodeId: m.nodeId, start: at, end }
    at = end
    return r
  })
}
