import { open } from 'node:fs/promises'
import type { LayerTensors, ModelTensors } from '../gguf/architecture.js'
import type { GgufFile, GgufTensorInfo } from '../gguf/reader.js'
import { fileReadAt, type Allocate, type LoadProgress } from '../files.js'
import { ModelFileError } from '../errors.js'
import { blockType, dequantizeRow, rowBytes } from '../quant/block-types.js'
import { fillShard, type Piece } from '../shard-weights.js'
import type { LlmShardDims } from './shard-plan.js'
import type { LlmLayerWeights, LlmWeights, QTensor } from './weights.js'

/** A job's leader embeds and samples: its shard holds the embedding; every shard holds its rows of the classifier. */
export type LlmShardRole = 'leader' | 'member'

/**
 * Which bytes of a GGUF file one shard needs, where they go in its buffer, and the weights' views
 * of that buffer once filled. Of each layer: its rows of q/k/v and gate/up, its columns of the
 * attention output and down (whole blocks of every row), its slices of the biases; norms whole.
 * Its rows of the classifier; the embedding only for the leader (whose rows of a tied classifier
 * are then a view of it, not read twice).
 */
export interface LlmShardPlan {
  readonly bytes: number
  readonly pieces: readonly Piece[] // in file order, adjacent runs merged
  readonly views: (buffer: Uint8Array) => LlmWeights
}

type Cut = { readonly keep: 'all' } | { readonly keep: 'rows' | 'cols', readonly start: number, readonly count: number }

/** Matrices start on cache lines in the buffer, so the kernels' loads do not straddle them needlessly. */
const ALIGN = 64

export function planLlmShard (t: ModelTensors, d: LlmShardDims, role: LlmShardRole, dataOffset: number): LlmShardPlan {
  const pieces: Piece[] = []
  let bytes = 0
  const place = (n: number, align: number): number => { const at = Math.ceil(bytes / align) * align; bytes = at + n; return at }
  const seen = new Map<string, (buffer: Uint8Array) => QTensor>() // a tied classifier is the embedding: read once

  const matrix = (info: GgufTensorInfo, cut: Cut): (buffer: Uint8Array) => QTensor => {
    const known = seen.get(info.name)
    if (known !== undefined && cut.keep === 'all') return known
    const cols = info.dims[0]
    const rb = rowBytes(info.type, cols)
    const bt = blockType(info.type)
    if (rb === undefined || bt === undefined) throw new ModelFileError(`tensor ${info.name} has unsupported type id ${info.type}`)
    const rows = info.bytes / rb
    const from = dataOffset + info.offset
    let view: (buffer: Uint8Array) => QTensor
    if (cut.keep === 'cols') {
      if (cut.start % bt.blockElems !== 0 || cut.count % bt.blockElems !== 0) throw new RangeError(`columns [${cut.start}, ${cut.start + cut.count}) of ${info.name} do not fall on its ${bt.blockElems}-element blocks`)
      const skip = (cut.start / bt.blockElems) * bt.blockBytes
      const slice = (cut.count / bt.blockElems) * bt.blockBytes
      const at = place(rows * slice, ALIGN)
      if (slice > 0) for (let r = 0; r < rows; r++) pieces.push({ from: from + r * rb + skip, to: at + r * slice, bytes: slice })
      view = (buffer) => ({ name: info.name, type: info.type, rows, cols: cut.count, rowBytes: slice, bytes: buffer.subarray(at, at + rows * slice) })
    } else {
      const [start, count] = cut.keep === 'rows' ? [cut.start, cut.count] : [0, rows]
      const at = place(count * rb, ALIGN)
      if (count > 0) pieces.push({ from: from + start * rb, to: at, bytes: count * rb })
      view = (buffer) => ({ name: info.name, type: info.type, rows: count, cols, rowBytes: rb, bytes: buffer.subarray(at, at + count * rb) })
    }
    if (cut.keep === 'all') seen.set(info.name, view)
    return view
  }
  // vectors are small: read whole, dequantized to float32, then sliced
  const vector = (info: GgufTensorInfo, start = 0, count = info.dims[0]): (buffer: Uint8Array) => Float32Array => {
    const at = place(info.bytes, 4)
    pieces.push({ from: dataOffset + info.offset, to: at, bytes: info.bytes })
    return (buffer) => {
      const all = new Float32Array(info.dims[0])
      dequantizeRow(info.type, buffer.subarray(at, at + info.bytes), info.dims[0], all)
      return all.slice(start, start + count)
    }
  }
  const maybe = <T>(info: GgufTensorInfo | null, f: (i: GgufTensorInfo) => T): T | null => info === null ? null : f(info)

  const layer = (l: LayerTensors): (buffer: Uint8Array) => LlmLayerWeights => {
    const q: Cut = { keep: 'rows', start: d.qStart, count: d.qDim }
    const kv: Cut = { keep: 'rows', start: d.kvStart, count: d.kvDim }
    const ffn: Cut = { keep: 'rows', start: d.hiddenStart, count: d.hidden }
    const v = {
      attnNorm: vector(l.attnNorm),
      wq: matrix(l.wq, q),
      wk: matrix(l.wk, kv),
      wv: matrix(l.wv, kv),
      wo: matrix(l.wo, { keep: 'cols', start: d.qStart, count: d.qDim }),
      bq: maybe(l.bq, (i) => vector(i, d.qStart, d.qDim)),
      bk: maybe(l.bk, (i) => vector(i, d.kvStart, d.kvDim)),
      bv: maybe(l.bv, (i) => vector(i, d.kvStart, d.kvDim)),
      qNorm: maybe(l.qNorm, (i) => vector(i)),
      kNorm: maybe(l.kNorm, (i) => vector(i)),
      ffnNorm: vector(l.ffnNorm),
      gate: matrix(l.gate, ffn),
      up: matrix(l.up, ffn),
      down: matrix(l.down, { keep: 'cols', start: d.hiddenStart, count: d.hidden })
    }
    return (b) => ({
      attnNorm: v.attnNorm(b), wq: v.wq(b), wk: v.wk(b), wv: v.wv(b), wo: v.wo(b),
      bq: v.bq?.(b) ?? null, bk: v.bk?.(b) ?? null, bv: v.bv?.(b) ?? null, qNorm: v.qNorm?.(b) ?? null, kNorm: v.kNorm?.(b) ?? null,
      ffnNorm: v.ffnNorm(b), gate: v.gate(b), up: v.up(b), down: v.down(b)
    })
  }

  const tokEmb = role === 'leader' ? matrix(t.tokEmb, { keep: 'all' }) : null
  const output = tokEmb !== null && t.output === t.tokEmb
    ? (b: Uint8Array) => rowsOf(tokEmb(b), d.vocabStart, d.vocab)
    : matrix(t.output, { keep: 'rows', start: d.vocabStart, count: d.vocab })
  const outputNorm = vector(t.outputNorm)
  const ropeFreqs = maybe(t.ropeFreqs, (i) => vector(i))
  const layers = t.layers.map(layer)
  return {
    bytes,
    pieces: mergeRuns(pieces),
    views: (b) => ({ tokEmb: tokEmb?.(b) ?? null, output: output(b), outputNorm: outputNorm(b), ropeFreqs: ropeFreqs?.(b) ?? null, layers: layers.map((l) => l(b)) })
  }
}

/** Rows [start, start + count) of a matrix, as a view of its bytes. */
function rowsOf (m: QTensor, start: number, count: number): QTensor {
  return { ...m, rows: count, bytes: m.bytes.subarray(start * m.rowBytes, (start + count) * m.rowBytes) }
}

/** Pieces sorted by file offset, runs adjacent in both the file and the buffer made one. */
function mergeRuns (pieces: readonly Piece[]): Piece[] {
  const sorted = [...pieces].sort((a, b) => a.from - b.from)
  const out: Piece[] = []
  for (const p of sorted) {
    const last = out[out.length - 1]
    if (last !== undefined && last.from + last.bytes === p.from && last.to + last.bytes === p.to) out[out.length - 1] = { ...last, bytes: last.bytes + p.bytes }
    else out.push(p)
  }
  return out
}

/** Read a plan's bytes from the file into one buffer from `allocate`; the weights' views of it. */
export async function readLlmShard (file: GgufFile, plan: LlmShardPlan, allocate: Allocate, onProgress?: LoadProgress): Promise<LlmWeights> {
  const buffer = allocate(plan.bytes)
  const fh = await open(file.path, 'r')
  try {
    const { size } = await fh.stat()
    if (size !== file.fileBytes) throw new ModelFileError(`${file.path} is ${size} bytes, its header was read from a file of ${file.fileBytes}; restart the agent`)
    await fillShard(plan, buffer, fileReadAt(fh, file.path), onProgress)
  } finally {
    await fh.close()
  }
  return plan.views(buffer)
}
