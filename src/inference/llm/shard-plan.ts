import type { LlmConfig } from '../gguf/architecture.js'
import type { Sharding } from '../job/plan.js'
import { blockType } from '../quant/block-types.js'
import { RING_COLUMNS, type ShardUnits } from '../shard.js'

/**
 * A ring member's part of every layer of a GGUF model: query heads [headStart, headEnd) (with the
 * kv heads they read) and FFN units [hiddenStart, hiddenEnd). Rows of q/k/v and gate/up split
 * anywhere; attention output and down split along their input dimension, so boundaries fall on
 * their block size (llmUnits). Each part yields a partial `dim` vector per position; the ring sums them.
 * And its rows [vocabStart, vocabEnd) of the classifier: their logits, which the leader gathers.
 */
export interface LlmShard {
  readonly headStart: number
  readonly headEnd: number // exclusive
  readonly hiddenStart: number
  readonly hiddenEnd: number // exclusive
  readonly vocabStart: number
  readonly vocabEnd: number // exclusive
}

/** The smallest whole pieces a model splits into: heads per attention unit, FFN units per FFN unit. */
export interface LlmUnits {
  readonly headsPerUnit: number
  readonly hiddenPerUnit: number
}

const gcd = (a: number, b: number): number => b === 0 ? a : gcd(b, a % b)
/** Columns a unit has at least: each unit's product is a kernel call of its own (native/quant.c group_units), and float types have blocks of 1 */
const MIN_UNIT = 32
/**
 * Columns a unit grows to where its matrix still has MIN_UNITS of them: measured on the packed
 * Q4_0/Q8_0 kernels (768 × 2048), units of 32 columns cost up to a quarter more for one token and 3×
 * for 8 tokens against whole rows; units of 256, no more than the noise.
 */
const TARGET_UNIT = 256
/** Units a split dimension keeps at least, so rings of up to this many members all get a share */
const MIN_UNITS = 8
const blockOf = (type: number): number => Math.max(MIN_UNIT, blockType(type)?.blockElems ?? 1)
/** `least` doubled towards TARGET_UNIT columns (of `width` each) while `total` still holds MIN_UNITS of them */
const grown = (least: number, width: number, total: number): number => {
  let n = least
  while (n * width < TARGET_UNIT && total / (2 * n) >= MIN_UNITS) n *= 2
  return n
}

/** What llmUnits reads of a model's layers: the types of attention output and down (tensor infos or loaded weights). */
export interface SplitTypes { readonly layers: ReadonlyArray<{ readonly wo: { readonly type: number }, readonly down: { readonly type: number } }> }

/**
 * Units from the tensors' types: an attention unit is at least the fewest heads whose columns of
 * the output projection are whole blocks (4 heads of 64 for a K-quant's 256, one for Q8_0's 32); an
 * FFN unit at least one block of down's input. Both grow towards TARGET_UNIT columns where the model
 * is wide enough. Layers may mix types (Q4_K_M): the largest block rules, and block sizes (32, 256)
 * divide each other.
 */
export function llmUnits (c: LlmConfig, t: SplitTypes): LlmUnits {
  const wo = Math.max(...t.layers.map((l) => blockOf(l.wo.type)))
  const down = Math.max(...t.layers.map((l) => blockOf(l.down.type)))
  return { headsPerUnit: grown(wo / gcd(wo, c.headDim), c.headDim, c.nHeads), hiddenPerUnit: grown(down, 1, c.hidden) }
}

/** The columns of one unit of attention output and of down: what their products are summed in (LinearKernels.matmulUnits). */
export const unitColumns = (c: LlmConfig, u: LlmUnits): { readonly wo: number, readonly down: number } =>
  ({ wo: u.headsPerUnit * c.headDim, down: u.hiddenPerUnit })

/** One device runs everything. */
export const wholeLlm = (c: LlmConfig): LlmShard => ({ headStart: 0, headEnd: c.nHeads, hiddenStart: 0, hiddenEnd: c.hidden, vocabStart: 0, vocabEnd: c.vocabSize })

/** Classifier rows split in groups of the native kernels' interleaved rows (native/quant.c), so no member runs a slow tail group. */
const VOCAB_UNIT = 16

/**
 * The shard of a member owning ring columns [start, end): the same fraction of attention units and
 * of FFN units, each boundary rounded to a whole unit (the last unit may be short), so adjacent
 * ranges tile the model exactly and every unit goes to one member.
 */
export function llmShardForColumns (c: LlmConfig, u: LlmUnits, start: number, end: number): LlmShard {
  const cut = (total: number, per: number, col: number): number => Math.min(total, Math.round((col * Math.ceil(total / per)) / RING_COLUMNS) * per)
  return {
    headStart: cut(c.nHeads, u.headsPerUnit, start),
    headEnd: cut(c.nHeads, u.headsPerUnit, end),
    hiddenStart: cut(c.hidden, u.hiddenPerUnit, start),
    hiddenEnd: cut(c.hidden, u.hiddenPerUnit, end),
    vocabStart: cut(c.vocabSize, VOCAB_UNIT, start),
    vocabEnd: cut(c.vocabSize, VOCAB_UNIT, end)
  }
}

/** Sizes and offsets a shard implies, in elements. */
export interface LlmShardDims {
  readonly nHeads: number // own query heads
  readonly qStart: number // first row of Wq, first column of Wo
  readonly qDim: number
  readonly kvHeadStart: number // the kv heads the own query heads read
  readonly nKvHeads: number
  readonly kvStart: number // first row of Wk and Wv
  readonly kvDim: number
  /** own head 0's place in its kv group: local head i reads local kv head ⌊(headOffset + i) / kvMul⌋ */
  readonly headOffset: number
  readonly hiddenStart: number
  readonly hidden: number
  readonly vocabStart: number // first classifier row
  readonly vocab: number
}

/**
 * Where heads and kv groups do not line up (more members than kv heads), two members compute the
 * same kv head's cache: each for its own query heads.
 */
export function llmShardDims (c: LlmConfig, s: LlmShard): LlmShardDims {
  const kvMul = c.nHeads / c.nKvHeads
  const nHeads = s.headEnd - s.headStart
  const kvHeadStart = Math.floor(s.headStart / kvMul)
  const nKvHeads = nHeads === 0 ? 0 : Math.ceil(s.headEnd / kvMul) - kvHeadStart
  return {
    nHeads,
    qStart: s.headStart * c.headDim,
    qDim: nHeads * c.headDim,
    kvHeadStart,
    nKvHeads,
    kvStart: kvHeadStart * c.headDim,
    kvDim: nKvHeads * c.headDim,
    headOffset: s.headStart - kvHeadStart * kvMul,
    hiddenStart: s.hiddenStart,
    hidden: s.hiddenEnd - s.hiddenStart,
    vocabStart: s.vocabStart,
    vocab: s.vocabEnd - s.vocabStart
  }
}

export const isWholeLlm = (c: LlmConfig, s: LlmShard): boolean =>
  s.headStart === 0 && s.headEnd === c.nHeads && s.hiddenStart === 0 && s.hiddenEnd === c.hidden && s.vocabStart === 0 && s.vocabEnd === c.vocabSize

/** The GGUF split for jobs. */
export const llmSharding = (c: LlmConfig, u: LlmUnits): Sharding<LlmShard> => ({
  shardOf: (start, end) => llmShardForColumns(c, u, start, end),
  units: (s) => ({ heads: s.headEnd - s.headStart, hiddenUnits: s.hiddenEnd - s.hiddenStart })
})

/** What a member owning ring columns [start, end) computes, for ring-status. */
export function llmUnitsForColumns (c: LlmConfig, u: LlmUnits, start: number, end: number): ShardUnits {
  const d = llmShardDims(c, llmShardForColumns(c, u, start, end))
  return { kvHeads: d.nKvHeads, queryHeads: d.nHeads, hidden: d.hidden, classifierRows: d.vocab }
}
