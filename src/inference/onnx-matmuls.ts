import * as ort from 'onnxruntime-node'
import type { Weights } from './checkpoint.js'
import type { ModelConfig } from './config.js'
import { classifierWeights, type Matmuls } from './matmuls.js'
import { encodeModel, type GraphSpec } from './onnx-graph.js'
import { shardDims, type Shard } from './shard.js'

/**
 * Matrix work in onnxruntime (MLAS kernels, AVX-512 here), one session per layer part so a layer
 * costs three calls (about 11 µs of overhead each). The weights are fed as inputs, wrapping views
 * of the shard's weights: onnxruntime-node reads them in place, so nothing is copied; measured as
 * fast as constant initializers for these single-row products (bench/README.md).
 */
export async function onnxMatmuls (c: ModelConfig, w: Weights, shard: Shard, threads: number): Promise<Matmuls> {
  const d = shardDims(c, shard)
  const dim = c.dim
  const options: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // a spinning worker steals the core the event loop needs between calls
    extra: { session: { intra_op: { allow_spinning: '0' } } }
  }
  const gemm = (x: string, wname: string, y: string): GraphSpec['nodes'][number] => ({ op: 'Gemm', inputs: [x, wname], outputs: [y], ints: { transB: 1 } })
  const session = async (g: Omit<GraphSpec, 'initializers'>): Promise<ort.InferenceSession> =>
    await ort.InferenceSession.create(encodeModel({ ...g, initializers: [] }), options)

  const [qkv, attentionOut, ffn, classifier] = await Promise.all([
    session({
      inputs: [{ name: 'x', dims: [1, dim] }, { name: 'wq', dims: [d.qDim, dim] }, { name: 'wk', dims: [d.kvDim, dim] }, { name: 'wv', dims: [d.kvDim, dim] }],
      outputs: [{ name: 'q', dims: [1, d.qDim] }, { name: 'k', dims: [1, d.kvDim] }, { name: 'v', dims: [1, d.kvDim] }],
      nodes: [gemm('x', 'wq', 'q'), gemm('x', 'wk', 'k'), gemm('x', 'wv', 'v')]
    }),
    session({
      inputs: [{ name: 'att', dims: [1, d.qDim] }, { name: 'wo', dims: [dim, d.qDim] }],
      outputs: [{ name: 'y', dims: [1, dim] }],
      nodes: [gemm('att', 'wo', 'y')]
    }),
    session({
      inputs: [{ name: 'x', dims: [1, dim] }, { name: 'w1', dims: [d.hidden, dim] }, { name: 'w3', dims: [d.hidden, dim] }, { name: 'w2', dims: [dim, d.hidden] }],
      outputs: [{ name: 'y', dims: [1, dim] }],
      nodes: [
        gemm('x', 'w1', 'h1'), gemm('x', 'w3', 'h3'),
        { op: 'Sigmoid', inputs: ['h1'], outputs: ['sig'] },
        { op: 'Mul', inputs: ['h1', 'sig'], outputs: ['silu'] },
        { op: 'Mul', inputs: ['silu', 'h3'], outputs: ['h'] },
        gemm('h', 'w2', 'y')
      ]
    }),
    session({
      inputs: [{ name: 'x', dims: [1, dim] }, { name: 'wcls', dims: [c.vocabSize, dim] }],
      outputs: [{ name: 'logits', dims: [1, c.vocabSize] }],
      nodes: [gemm('x', 'wcls', 'logits')]
    })
  ])

  const t = (data: Float32Array, rows: number, cols: number): ort.Tensor => new ort.Tensor('float32', data, [rows, cols])
  const layers = w.layers.map((lw) => ({
    wq: t(lw.wq, d.qDim, dim),
    wk: t(lw.wk, d.kvDim, dim),
    wv: t(lw.wv, d.kvDim, dim),
    wo: t(lw.wo, dim, d.qDim),
    w1: t(lw.w1, d.hidden, dim),
    w3: t(lw.w3, d.hidden, dim),
    w2: t(lw.w2, dim, d.hidden)
  }))
  const wcls = w.wcls === null ? null : t(w.wcls, c.vocabSize, dim)
  const vec = (v: Float32Array): ort.Tensor => new ort.Tensor('float32', v, [1, v.length])
  const copy = (to: Float32Array, from: ort.Tensor): void => { to.set(from.data as Float32Array) }

  return {
    name: `onnx(${threads})`,
    qkv: async (l, xb, q, k, v) => {
      const r = await qkv.run({ x: vec(xb), wq: layers[l].wq, wk: layers[l].wk, wv: layers[l].wv })
      copy(q, r.q); copy(k, r.k); copy(v, r.v)
    },
    attentionOut: async (l, att, y) => {
      copy(y, (await attentionOut.run({ att: vec(att), wo: layers[l].wo })).y)
    },
    ffn: async (l, xb, y) => {
      const lw = layers[l]
      copy(y, (await ffn.run({ x: vec(xb), w1: lw.w1, w3: lw.w3, w2: lw.w2 })).y)
    },
    classifier: async (x, logits) => {
      copy(logits, (await classifier.run({ x: vec(x), wcls: wcls ?? t(classifierWeights(w), c.vocabSize, dim) })).logits)
    },
    close: async () => { await Promise.all([qkv, attentionOut, ffn, classifier].map(async (s) => { await s.release() })) }
  }
}
