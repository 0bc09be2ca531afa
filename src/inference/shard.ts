import { headSize, kvMul, type ModelConfig } from './config.js'
import { ShardRangeError } from './errors.js'
import type { Sharding } from './job/plan.js'

/**
 * The part of every layer one ring member computes: a range of kv heads (with the query heads
 * that share them) and a range of FFN hidden units. Each part yields a partial `dim` vector;
 * summing the partials of all members gives the full layer output.
 */
export interface Shard {
  readonly kvHeadStart: number
  readonly kvHeadEnd: number // exclusive
  readonly hiddenStart: number
  readonly hiddenEnd: number // exclusive
}

/** One device runs everything. */
export const wholeModel = (c: ModelConfig): Shard => ({ kvHeadStart: 0, kvHeadEnd: c.nKvHeads, hiddenStart: 0, hiddenEnd: c.hiddenDim })

export const isWholeModel = (c: ModelConfig, s: Shard): boolean =>
  s.kvHeadStart === 0 && s.kvHeadEnd === c.nKvHeads && s.hiddenStart === 0 && s.hiddenEnd === c.hiddenDim

/** A shard must be whole-unit ranges inside the model. */
export function checkShard (c: ModelConfig, s: Shard): void {
  const inside = (start: number, end: number, units: number): boolean => Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= units
  if (!inside(s.kvHeadStart, s.kvHeadEnd, c.nKvHeads) || !inside(s.hiddenStart, s.hiddenEnd, c.hiddenDim)) {
    throw new ShardRangeError(`shard kv heads [${s.kvHeadStart}, ${s.kvHeadEnd}) and hidden units [${s.hiddenStart}, ${s.hiddenEnd}) do not fit a model with ${c.nKvHeads} kv heads and ${c.hiddenDim} hidden units`)
  }
}

/** Sizes and offsets a shard implies, in floats. */
export interface ShardDims {
  readonly qStart: number // first row of Wq (= first column of Wo) this shard owns
  readonly qDim: number // query rows: own heads × head size
  readonly kvStart: number // first row of Wk/Wv
  readonly kvDim: number
  readonly nHeads: number // own query heads
  readonly hiddenStart: number
  readonly hidden: number // own FFN units
}

export function shardDims (c: ModelConfig, s: Shard): ShardDims {
  const hs = headSize(c)
  const m = kvMul(c)
  return {
    qStart: s.kvHeadStart * m * hs,
    qDim: (s.kvHeadEnd - s.kvHeadStart) * m * hs,
    kvStart: s.kvHeadStart * hs,
    kvDim: (s.kvHeadEnd - s.kvHeadStart) * hs,
    nHeads: (s.kvHeadEnd - s.kvHeadStart) * m,
    hiddenStart: s.hiddenStart,
    hidden: s.hiddenEnd - s.hiddenStart
  }
}

/** The virtual column space of the ring (DESIGN.md): a member owning [a, b) owns that fraction. */
export const RING_COLUMNS = 8192

/**
 * The shard of a member owning ring columns [start, end): the same fraction of kv heads and of
 * hidden units, each boundary rounded to a whole unit, so adjacent ranges tile the model exactly.
 */
export function shardForColumns (c: ModelConfig, start: number, end: number, columns = RING_COLUMNS): Shard {
  const cut = (units: number, col: number): number => Math.round((col * units) / columns)
  return {
    kvHeadStart: cut(c.nKvHeads, start),
    kvHeadEnd: cut(c.nKvHeads, end),
    hiddenStart: cut(c.hiddenDim, start),
    hiddenEnd: cut(c.hiddenDim, end)
  }
}

/** How many parallel units a member owning ring columns [start, end) computes; all zero: none. */
export interface ShardUnits {
  readonly kvHeads: number
  readonly queryHeads: number
  readonly hidden: number
  /** a GGUF member's rows of the classifier (a llama2.c leader computes all of it alone) */
  readonly classifierRows?: number
}

export function unitsForColumns (c: ModelConfig, start: number, end: number): ShardUnits {
  const d = shardDims(c, shardForColumns(c, start, end))
  return { kvHeads: d.kvDim / headSize(c), queryHeads: d.nHeads, hidden: d.hidden }
}

/** The llama2.c split for jobs: column ranges to kv-head groups and FFN units (shardForColumns). */
export const llama2cSharding = (c: ModelConfig): Sharding<Shard> => ({
  shardOf: (start, end) => shardForColumns(c, start, end),
  units: (s) => ({ heads: (s.kvHeadEnd - s.kvHeadStart) * kvMul(c), hiddenUnits: s.hiddenEnd - s.hiddenStart })
})
