import type { Weights } from './checkpoint.js'
import { headSize, kvMul, type ModelConfig } from './config.js'
import { InferenceSettingError } from './errors.js'
import { classifierWeights, type Matmuls } from './matmuls.js'
import { nativeKernels } from './native.js'
import { shardDims, type Shard } from './shard.js'

/**
 * The matrix work and attention in C (llama2.c's loops, OpenMP over rows and heads), compiled on
 * this machine with -O3 -march=native, so the compiler vectorises them for this CPU's widest
 * registers. The weights are read in place through their Float32Array views: nothing is copied.
 */
export function nativeMatmuls (c: ModelConfig, w: Weights, shard: Shard, threads: number): Matmuls {
  const k = nativeKernels()
  if (typeof k === 'string') throw new InferenceSettingError(`--engine native: ${k}`)
  const d = shardDims(c, shard)
  const dim = c.dim
  const hb = new Float32Array(d.hidden)
  const hs = headSize(c)
  const group = kvMul(c)
  return {
    name: 'native',
    qkv: (l, xb, q, kk, v) => {
      const lw = w.layers[l]
      k.qkv(q, kk, v, lw.wq, lw.wk, lw.wv, xb, dim, d.qDim, d.kvDim, threads)
    },
    attend: (s, l, pos) => {
      const layerAt = l * s.positions * d.kvDim
      const cache = (all: Float32Array): Float32Array => all.subarray(layerAt, layerAt + s.positions * d.kvDim)
      k.attend(s.att, s.scores, s.q, cache(s.keyCache), cache(s.valueCache), d.nHeads, hs, d.kvDim, group, s.positions, pos, 1, 0, threads)
    },
    attentionOut: (l, att, out) => { k.matvec(out, w.layers[l].wo, d.qDim, att, dim, d.qDim, threads) },
    ffn: (l, xb, out) => {
      const lw = w.layers[l]
      k.ffn(out, hb, lw.w1, lw.w3, lw.w2, xb, dim, d.hidden, threads)
    },
    classifier: (x, logits) => { k.matvec(logits, classifierWeights(w), dim, x, c.vocabSize, dim, threads) },
    close: async () => {}
  }
}
