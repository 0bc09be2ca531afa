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
