import type { LlmConfig } from '../gguf/architecture.js'
import { allocateHeap } from '../files.js'
import { attend, swiglu } from '../kernels.js'
import { localAllReduce, type AllReduce } from '../reduce.js'
import type { LinearKernels } from './linear.js'
import type { LlmShardDims } from './shard-plan.js'
import { matrixRow, type LlmWeights } from './weights.js'

/**
 * A GGUF model, or one ring member's shard of it: its shape, the part of every layer it computes
 * (the whole model on one device), its weights (quantized, in memory: the shard's slices only)
 * and the kernels that run them.
 */
export interface LlmModel {
  readonly config: LlmConfig
  readonly shard: LlmShardDims
  readonly weights: LlmWeights
  readonly linear: LinearKernels
  /** Columns of a unit of attention output and of down: their products are summed unit by unit (matmulUnits), as a ring splits them */
  readonly units: { readonly wo: number, readonly down: number }
  /** Native attention of a batch of tokens over a layer's cache (kernels.c attend); kernels.ts attend, token by token, otherwise. */
  readonly attend?: BatchAttend
  /** Native SwiGLU of the first n values (kernels.c swiglu); kernels.ts swiglu otherwise. */
  readonly swiglu?: (gate: Float32Array, up: Float32Array, n: number) => void
}

/** attend's arguments, for nTokens queries at positions pos0.. (q and att: nTokens rows) */
export type BatchAttend = (att: Float32Array, scores: Float32Array, q: Float32Array, keyCache: Float32Array, valueCache: Float32Array,
  nHeads: number, headSize: number, kvDim: number, kvMul: number, positions: number, pos0: number, nTokens: number, headOffset: number) => void

/**
 * Every buffer of a forward pass for batches of up to `batch` tokens, a KV cache of `positions`,
 * and logits for `logitRows` tokens of a batch (generation needs one: a batch of 150k-token rows is tens of MiB).
 */
export interface LlmState {
  readonly batch: number
  readonly positions: number
  readonly logitRows: number
  readonly x: Float32Array // (batch, dim) the residual stream
  readonly xb: Float32Array // (batch, dim) normed input of a block
  readonly proj: Float64Array // (batch, dim) a block's output (this shard's part of it, until the all-reduce)
  readonly q: Float32Array // (batch, nHeads·headDim)
  readonly k: Float32Array // (batch, kvDim)
  readonly v: Float32Array // (batch, kvDim)
  readonly att: Float32Array // (batch, nHeads·headDim)
  readonly gate: Float32Array // (batch, hidden)
  readonly up: Float32Array // (batch, hidden)
  readonly scores: Float32Array // (nHeads, positions)
  readonly keyCache: Float32Array // (layer, positions, kvDim), float32: more exact than llama.cpp's f16 cache
  readonly valueCache: Float32Array
  readonly ropeCos: Float32Array // (positions, headDim/2)
  readonly ropeSin: Float32Array
  readonly logits: Float32Array // (logitRows, vocab)
}

export function createLlmState (m: LlmModel, positions: number, batch: number, logitRows = 1): LlmState {
  const c = m.config
  const { qDim, kvDim, nHeads, hidden } = m.shard
  const half = c.headDim / 2
  const ropeCos = new Float32Array(positions * half)
  const ropeSin = new Float32Array(positions * half)
  for (let i = 0; i < half; i++) {
    // theta_i = base^(-2i/headDim), divided by Llama 3's per-pair factor; angles in double
    const freq = Math.pow(c.ropeTheta, -2 * i / c.headDim) / (m.weights.ropeFreqs?.[i] ?? 1)
    for (let p = 0; p < positions; p++) {
      ropeCos[p * half + i] = Math.cos(p * freq)
      ropeSin[p * half + i] = Math.sin(p * freq)
    }
  }
  // on huge pages: a fresh cache otherwise takes a page fault every few positions of every layer
  const cacheLength = c.nLayers * positions * kvDim
  const kv = allocateHeap(cacheLength * 8)
  return {
    batch,
    positions,
    logitRows,
    x: new Float32Array(batch * c.dim),
    xb: new Float32Array(batch * c.dim),
    proj: new Float64Array(batch * c.dim),
    q: new Float32Array(batch * qDim),
    k: new Float32Array(batch * kvDim),
    v: new Float32Array(batch * kvDim),
    att: new Float32Array(batch * qDim),
    gate: new Float32Array(batch * hidden),
    up: new Float32Array(batch * hidden),
    scores: new Float32Array(nHeads * positions),
    keyCache: new Float32Array(kv.buffer, 0, cacheLength),
    valueCache: new Float32Array(kv.buffer, cacheLength * 4, cacheLength),
    ropeCos,
    ropeSin,
    logits: new Float32Array(logitRows * m.weights.output.rows)
  }
}

/**
 * Feed tokens[i] at position pos0 + i (a batch: the whole prompt chunk goes through each layer
 * at once, one matrix × matrix product per weight), and return the logits of tokens
 * `logitsFrom`.. (row by row in s.logits; none when logitsFrom = tokens.length).
 */
export async function forwardBatch (m: LlmModel, s: LlmState, tokens: readonly number[], pos0: number, logitsFrom: number, reduce: AllReduce = localAllReduce): Promise<Float32Array> {
  embedRows(m, tokens, s.x)
  await forwardRows(m, s, tokens.length, pos0, reduce)
  return logitsOf(m, s, tokens.length, logitsFrom)
}

/** The embedding rows of `tokens` into x (n·dim): the first layer's input. */
export function embedRows (m: LlmModel, tokens: readonly number[], x: Float32Array): void {
  const { tokEmb } = m.weights
  if (tokEmb === null) throw new Error('this shard was loaded without the token embedding: its input comes from the job\'s leader')
  const dim = m.config.dim
  for (let t = 0; t < tokens.length; t++) matrixRow(tokEmb, tokens[t], x.subarray(t * dim, (t + 1) * dim))
}

/**
 * The layers for the n rows in s.x at positions pos0..: this shard's heads and FFN units, each
 * half's partial output summed over the ring by `reduce` (one call per layer half for the whole
 * chunk) before it joins the residual stream in s.x.
 */
export async function forwardRows (m: LlmModel, s: LlmState, n: number, pos0: number, reduce: AllReduce = localAllReduce): Promise<void> {
  const { config: c, weights: w, linear, shard: d } = m
  if (n < 1 || n > s.batch) throw new RangeError(`a batch of ${n} tokens does not fit the state's ${s.batch}`)
  if (pos0 + n > s.positions) throw new RangeError(`positions ${pos0}..${pos0 + n - 1} do not fit the KV cache of ${s.positions}`)
  const { dim, headDim: hd } = c
  const { qDim, kvDim, nHeads, nKvHeads, hidden } = d
  const x = s.x.subarray(0, n * dim)
  const proj = s.proj.subarray(0, n * dim)
  const kvMul = c.nHeads / c.nKvHeads

  for (let l = 0; l < c.nLayers; l++) {
    const lw = w.layers[l]
    // attention: own heads → partial output, summed over the ring
    if (nHeads > 0) {
      rmsnormRows(s.xb, x, lw.attnNorm, n, dim, c.rmsEps)
      linear.group([s.q, s.k, s.v], [lw.wq, lw.wk, lw.wv], s.xb, n)
      if (lw.bq !== null) addBias(s.q, lw.bq, n)
      if (lw.bk !== null) addBias(s.k, lw.bk, n)
      if (lw.bv !== null) addBias(s.v, lw.bv, n)
      if (lw.qNorm !== null) rmsnormRows(s.q, s.q, lw.qNorm, n * nHeads, hd, c.rmsEps)
      if (lw.kNorm !== null) rmsnormRows(s.k, s.k, lw.kNorm, n * nKvHeads, hd, c.rmsEps)
      const layerAt = l * s.positions * kvDim
      for (let t = 0; t < n; t++) {
        const pos = pos0 + t
        rope(s.q, t * qDim, nHeads, hd, s, pos, c.ropeStyle)
        rope(s.k, t * kvDim, nKvHeads, hd, s, pos, c.ropeStyle)
        s.keyCache.set(s.k.subarray(t * kvDim, (t + 1) * kvDim), layerAt + pos * kvDim)
        s.valueCache.set(s.v.subarray(t * kvDim, (t + 1) * kvDim), layerAt + pos * kvDim)
      }
      const kc = s.keyCache.subarray(layerAt, layerAt + s.positions * kvDim)
      const vc = s.valueCache.subarray(layerAt, layerAt + s.positions * kvDim)
      if (m.attend !== undefined) m.attend(s.att, s.scores, s.q, kc, vc, nHeads, hd, kvDim, kvMul, s.positions, pos0, n, d.headOffset)
      else {
        for (let t = 0; t < n; t++) {
          attend(s.att.subarray(t * qDim, (t + 1) * qDim), s.scores, s.q.subarray(t * qDim, (t + 1) * qDim), kc, vc, nHeads, hd, kvDim, kvMul, s.positions, pos0 + t, d.headOffset)
        }
      }
      linear.matmulUnits(proj, lw.wo, s.att, n, m.units.wo)
    } else proj.fill(0)
    await reduced(reduce, proj, pos0, l, 'attention')
    addRounded(x, proj)

    // FFN: down(silu(gate) * up) over own units → partial output, summed over the ring
    if (hidden > 0) {
      rmsnormRows(s.xb, x, lw.ffnNorm, n, dim, c.rmsEps)
      linear.group([s.gate, s.up], [lw.gate, lw.up], s.xb, n)
      if (m.swiglu !== undefined) m.swiglu(s.gate, s.up, n * hidden)
      else swiglu(s.gate.subarray(0, n * hidden), s.up)
      linear.matmulUnits(proj, lw.down, s.gate, n, m.units.down)
    } else proj.fill(0)
    await reduced(reduce, proj, pos0, l, 'ffn')
    addRounded(x, proj)
  }
}

/** x += the float32 rounding of the float64 sum: one rounding, wherever the sum's parts were computed */
function addRounded (x: Float32Array, sum: Float64Array): void {
  for (let i = 0; i < x.length; i++) x[i] += Math.fround(sum[i])
}

/** One device's reduce does nothing and returns nothing: no await, no trip through the event loop. */
async function reduced (reduce: AllReduce, partial: Float64Array, position: number, layer: number, kind: 'attention' | 'ffn'): Promise<void> {
  const pending = reduce(partial, { position, layer, kind })
  if (pending !== undefined) await pending
}

/** The logits of rows logitsFrom..n-1 of s.x (after forwardRows), row by row: of this shard's classifier rows (the whole vocabulary on one device). */
export function logitsOf (m: LlmModel, s: LlmState, n: number, logitsFrom: number): Float32Array {
  const { config: c, weights: w } = m
  const wanted = n - logitsFrom
  if (wanted <= 0) return s.logits.subarray(0, 0)
  if (wanted > s.logitRows) throw new RangeError(`logits for ${wanted} tokens do not fit the state's ${s.logitRows} rows`)
  const dim = c.dim
  const last = s.xb.subarray(0, wanted * dim)
  rmsnormRows(last, s.x.subarray(logitsFrom * dim, n * dim), w.outputNorm, wanted, dim, c.rmsEps)
  const logits = s.logits.subarray(0, wanted * w.output.rows)
  m.linear.matmul(logits, w.output, last, wanted)
  return logits
}

/** o[r] = w * x[r] / sqrt(mean(x[r]²) + eps) for each of `rows` rows of `n`; `o` may be `x`. */
function rmsnormRows (o: Float32Array, x: Float32Array, w: Float32Array, rows: number, n: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const at = r * n
    let ss = 0
    for (let j = 0; j < n; j++) ss += x[at + j] * x[at + j]
    const inv = 1 / Math.sqrt(ss / n + eps)
    for (let j = 0; j < n; j++) o[at + j] = w[j] * (inv * x[at + j])
  }
}

function addBias (v: Float32Array, bias: Float32Array, rows: number): void {
  const n = bias.length
  for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) v[r * n + j] += bias[j]
}

/**
 * RoPE on `heads` heads of one token starting at vec[at]: llama rotates pairs (2i, 2i+1), the
 * NeoX style (qwen) pairs (i, i + headDim/2), each by angle pos·theta_i.
 */
function rope (vec: Float32Array, at: number, heads: number, hd: number, s: LlmState, pos: number, style: LlmConfig['ropeStyle']): void {
  const half = hd / 2
  const table = pos * half
  for (let h = 0; h < heads; h++) {
    const base = at + h * hd
    for (let i = 0; i < half; i++) {
      const cos = s.ropeCos[table + i]
      const sin = s.ropeSin[table + i]
      const a = style === 'interleaved' ? base + 2 * i : base + i
      const b = style === 'interleaved' ? a + 1 : a + half
      const v0 = vec[a]
      const v1 = vec[b]
      vec[a] = v0 * cos - v1 * sin
      vec[b] = v0 * sin + v1 * cos
    }
  }
}
