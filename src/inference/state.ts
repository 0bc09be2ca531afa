import { headSize, type ModelConfig } from './config.js'
import { shardDims, type Shard } from './shard.js'

/** Every activation buffer of one shard, and its KV cache. Allocated once; forward never allocates. */
export interface RunState {
  readonly positions: number // KV cache capacity
  readonly x: Float32Array // (dim,) the residual stream
  readonly xb: Float32Array // (dim,) normed input of a block
  readonly xb2: Float32Array // (dim,) a block's (partial) output
  readonly q: Float32Array // (qDim,) own query heads
  readonly k: Float32Array // (kvDim,) own key heads at this position
  readonly v: Float32Array // (kvDim,)
  readonly att: Float32Array // (qDim,) attention output of own heads
  readonly scores: Float32Array // (nHeads, positions) attention weights of own heads
  readonly keyCache: Float32Array // (layer, positions, kvDim)
  readonly valueCache: Float32Array // (layer, positions, kvDim)
  readonly ropeCos: Float32Array // (positions, headSize/2)
  readonly ropeSin: Float32Array // (positions, headSize/2)
  readonly logits: Float32Array // (vocab,)
}

/** Buffers for `positions` positions (at most the model's context). */
export function createRunState (c: ModelConfig, shard: Shard, positions: number): RunState {
  const d = shardDims(c, shard)
  const half = headSize(c) / 2
  const ropeCos = new Float32Array(positions * half)
  const ropeSin = new Float32Array(positions * half)
  for (let pos = 0; pos < positions; pos++) {
    for (let i = 0; i < half; i++) {
      // run.c: freq = 1 / powf(10000, head_dim / head_size) with head_dim = 2i, all in float32
      const freq = Math.fround(1 / Math.fround(Math.pow(10000, Math.fround((2 * i) / headSize(c)))))
      const angle = Math.fround(pos * freq)
      ropeCos[pos * half + i] = Math.cos(angle)
      ropeSin[pos * half + i] = Math.sin(angle)
    }
  }
  return {
    positions,
    x: new Float32Array(c.dim),
    xb: new Float32Array(c.dim),
    xb2: new Float32Array(c.dim),
    q: new Float32Array(d.qDim),
    k: new Float32Array(d.kvDim),
    v: new Float32Array(d.kvDim),
    att: new Float32Array(d.qDim),
    scores: new Float32Array(d.nHeads * positions),
    keyCache: new Float32Array(c.nLayers * positions * d.kvDim),
    valueCache: new Float32Array(c.nLayers * positions * d.kvDim),
    ropeCos,
    ropeSin,
    logits: new Float32Array(c.vocabSize)
  }
}
