import type { Weights } from './checkpoint.js'
import type { ModelConfig } from './config.js'
import { matvec, swiglu } from './kernels.js'
import { shardDims, type Shard } from './shard.js'
import type { RunState } from './state.js'

/**
 * The matrix work of one shard, grouped into the parts the forward pass calls once per layer.
 * Matrix-vector products dominate the time; which engine runs them (plain TypeScript, wasm SIMD,
 * C, onnxruntime) is a benchmark's decision behind this interface. A part may be asynchronous.
 */
export interface Matmuls {
  readonly name: string
  /** q = Wq·xb, k = Wk·xb, v = Wv·xb for the shard's heads. xb (dim,) → q (qDim,), k, v (kvDim,) */
  qkv: (l: number, xb: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array) => void | Promise<void>
  /**
   * Optional: attention of the shard's own heads at `pos` over layer l's KV cache, s.q → s.att
   * (this position's k and v already cached). forward.ts runs its TypeScript loop when absent.
   */
  attend?: (s: RunState, l: number, pos: number) => void
  /** out = Wo[:, own heads]·att: this shard's partial attention output. att (qDim,) → out (dim,) */
  attentionOut: (l: number, att: Float32Array, out: Float32Array) => void | Promise<void>
  /** out = W2[:, own units]·(silu(W1·xb) * W3·xb): partial FFN output. xb (dim,) → out (dim,) */
  ffn: (l: number, xb: Float32Array, out: Float32Array) => void | Promise<void>
  /** logits = Wcls·x. x (dim,) → logits (vocab,) */
  classifier: (x: Float32Array, logits: Float32Array) => void | Promise<void>
  /** Release engine resources (sessions, threads). */
  close: () => Promise<void>
}

/** The classifier, or an error on a member that was loaded without it (it never samples). */
export function classifierWeights (w: Weights): Float32Array {
  if (w.wcls === null) throw new Error('this shard was loaded without the classifier; load it withClassifier to compute logits')
  return w.wcls
}

/** Plain TypeScript loops over views of the shard's weights: no copies, no set-up cost. */
export function tsMatmuls (c: ModelConfig, w: Weights, shard: Shard): Matmuls {
  const d = shardDims(c, shard)
  const dim = c.dim
  const hb = new Float32Array(d.hidden) // (hidden,) W1·xb, then the SwiGLU output
  const hb2 = new Float32Array(d.hidden) // (hidden,) W3·xb
  return {
    name: 'ts',
    qkv: (l, xb, q, k, v) => {
      const lw = w.layers[l]
      matvec(q, lw.wq, 0, dim, xb, d.qDim, dim)
      matvec(k, lw.wk, 0, dim, xb, d.kvDim, dim)
      matvec(v, lw.wv, 0, dim, xb, d.kvDim, dim)
    },
    attentionOut: (l, att, out) => {
      matvec(out, w.layers[l].wo, 0, d.qDim, att, dim, d.qDim)
    },
    ffn: (l, xb, out) => {
      const lw = w.layers[l]
      matvec(hb, lw.w1, 0, dim, xb, d.hidden, dim)
      matvec(hb2, lw.w3, 0, dim, xb, d.hidden, dim)
      swiglu(hb, hb2)
      matvec(out, lw.w2, 0, d.hidden, hb, dim, d.hidden)
    },
    classifier: (x, logits) => { matvec(logits, classifierWeights(w), 0, dim, x, c.vocabSize, dim) },
    close: async () => {}
  }
}
