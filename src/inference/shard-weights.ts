import { assembleWeights, type Weights } from './checkpoint.js'
import { elementCount, tensorsInFileOrder, type CheckpointVersion, type ModelConfig, type TensorName } from './config.js'
import type { LoadProgress } from './files.js'
import { shardDims, type Shard } from './shard.js'

/** One contiguous run of bytes to copy from the checkpoint file into a shard's buffer. */
export interface Piece {
  readonly from: number // byte offset in the file
  readonly to: number // byte offset in the shard's buffer
  readonly bytes: number
}

/**
 * Which bytes of a checkpoint one shard needs and where they go in its buffer. Every member
 * needs the norms; of each layer only its rows of Wq/Wk/Wv/W1/W3 and its columns of Wo/W2; the
 * classifier only when it samples; the token embedding unless the leader sends it each
 * position's row (a shared classifier is the embedding: a sampler loads it anyway).
 */
export interface ShardPlan {
  readonly bytes: number // size of the shard's buffer
  readonly pieces: readonly Piece[] // in file order, adjacent runs merged
  /** The forward pass's view of a buffer filled by `pieces`. */
  readonly views: (buffer: Uint8Array) => Weights
}

/** How one file tensor, shaped [layers, rows, cols], is cut for a shard. */
type Cut =
  | { readonly keep: 'all' }
  | { readonly keep: 'none' }
  | { readonly keep: 'rows' | 'cols', readonly start: number, readonly count: number }

export function planShard (c: ModelConfig, version: CheckpointVersion, headerBytes: number, shard: Shard, withClassifier: boolean, withEmbedding = true): ShardPlan {
  const d = shardDims(c, shard)
  const embedding = withEmbedding || (withClassifier && c.sharedClassifier)
  const cutOf = (name: TensorName): Cut => {
    switch (name) {
      case 'wq': return { keep: 'rows', start: d.qStart, count: d.qDim }
      case 'wk': case 'wv': return { keep: 'rows', start: d.kvStart, count: d.kvDim }
      case 'wo': return { keep: 'cols', start: d.qStart, count: d.qDim }
      case 'w1': case 'w3': return { keep: 'rows', start: d.hiddenStart, count: d.hidden }
      case 'w2': return { keep: 'cols', start: d.hiddenStart, count: d.hidden }
      case 'wcls': return withClassifier ? { keep: 'all' } : { keep: 'none' }
      case 'tokEmb': return embedding ? { keep: 'all' } : { keep: 'none' }
      // RoPE tables of old v0 files: run.c recomputes RoPE
      case 'freqCisReal': case 'freqCisImag': return { keep: 'none' }
      default: return { keep: 'all' }
    }
  }
  const pieces: Piece[] = []
  const placed = new Map<TensorName, { at: number, floats: number }>() // float offsets in the buffer
  const add = (p: Piece): void => {
    if (p.bytes === 0) return
    const last = pieces[pieces.length - 1]
    if (last !== undefined && last.from + last.bytes === p.from && last.to + last.bytes === p.to) {
      pieces[pieces.length - 1] = { from: last.from, to: last.to, bytes: last.bytes + p.bytes }
    } else {
      pieces.push(p)
    }
  }
  let fileAt = headerBytes
  let bufferAt = 0
  for (const t of tensorsInFileOrder(c, version)) {
    const cut = cutOf(t.name)
    // [layers, rows, cols]; tensors without a layer axis (or a row axis) have one of each
    const [layers, rows, cols] = t.shape.length === 3 ? t.shape : t.shape.length === 2 ? [1, t.shape[0], t.shape[1]] : [1, 1, t.shape[0]]
    if (cut.keep === 'all') {
      add({ from: fileAt, to: bufferAt, bytes: 4 * elementCount(t) })
      placed.set(t.name, { at: bufferAt / 4, floats: elementCount(t) })
    } else if (cut.keep !== 'none') {
      const keptRows = cut.keep === 'rows' ? cut.count : rows
      const keptCols = cut.keep === 'cols' ? cut.count : cols
      for (let l = 0; l < layers; l++) {
        const layerFrom = fileAt + 4 * l * rows * cols
        const layerTo = bufferAt + 4 * l * keptRows * keptCols
        if (cut.keep === 'rows') add({ from: layerFrom + 4 * cut.start * cols, to: layerTo, bytes: 4 * keptRows * cols })
        else for (let r = 0; r < rows; r++) add({ from: layerFrom + 4 * (r * cols + cut.start), to: layerTo + 4 * r * keptCols, bytes: 4 * keptCols })
      }
      placed.set(t.name, { at: bufferAt / 4, floats: layers * keptRows * keptCols })
    }
    fileAt += 4 * elementCount(t)
    bufferAt += 4 * (placed.get(t.name)?.floats ?? 0)
  }

  const views = (buffer: Uint8Array): Weights => {
    const all = new Float32Array(buffer.buffer, buffer.byteOffset, bufferAt / 4)
    const whole = (name: TensorName): Float32Array => {
      const p = placed.get(name)
      if (p === undefined) throw new Error(`tensor ${name} is not part of this shard`)
      return all.subarray(p.at, p.at + p.floats)
    }
    return assembleWeights(c, whole, withClassifier, withEmbedding)
  }
  return { bytes: bufferAt, pieces, views }
}

/** Fills `into` (exactly its length) from `position` of the checkpoint. */
export type ReadAt = (into: Uint8Array, position: number) => Promise<void>

/**
 * Pieces whose file span fits in this many bytes are read with one positioned read into a
 * scratch buffer and copied out: a shard's columns of Wo or W2 are thousands of short runs, and
 * one read per run would cost a syscall each. Bounds the extra memory of a load.
 */
const SPAN_BYTES = 4 << 20

/** Copy every piece of a plan from the checkpoint into `buffer` (plan.bytes long). */
export async function fillShard (plan: Pick<ShardPlan, 'bytes' | 'pieces'>, buffer: Uint8Array, readAt: ReadAt, onProgress?: LoadProgress): Promise<void> {
  const { pieces } = plan
  let scratch: Uint8Array | null = null
  let done = 0
  for (let i = 0; i < pieces.length;) {
    const first = pieces[i]
    let end = i + 1
    while (end < pieces.length && pieces[end].from + pieces[end].bytes - first.from <= SPAN_BYTES) end++
    const groupBytes = pieces.slice(i, end).reduce((n, p) => n + p.bytes, 0)
    if (end === i + 1) {
      // one run: straight into place, in spans so progress moves
      for (let at = 0; at < first.bytes; at += SPAN_BYTES) {
        const n = Math.min(SPAN_BYTES, first.bytes - at)
        await readAt(buffer.subarray(first.to + at, first.to + at + n), first.from + at)
        onProgress?.(done + at + n, plan.bytes)
      }
    } else {
      const last = pieces[end - 1]
      scratch ??= new Uint8Array(SPAN_BYTES)
      const span = scratch.subarray(0, last.from + last.bytes - first.from)
      await readAt(span, first.from)
      for (let k = i; k < end; k++) {
        const p = pieces[k]
        buffer.set(span.subarray(p.from - first.from, p.from - first.from + p.bytes), p.to)
      }
      onProgress?.(done + groupBytes, plan.bytes)
    }
    done += groupBytes
    i = end
  }
}
