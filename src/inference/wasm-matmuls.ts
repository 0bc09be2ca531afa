import type { Weights } from './checkpoint.js'
import type { ModelConfig } from './config.js'
import type { Allocate } from './files.js'
import { swiglu } from './kernels.js'
import { onHugePages } from './native.js'
import { classifierWeights, type Matmuls } from './matmuls.js'
import { shardDims, type Shard } from './shard.js'
import { parallelMatvec, type MatvecJob, type ParallelMatvecOptions } from './wasm-threads.js'

const PAGE = 65536
/**
 * Scratch space at the bottom of the heap for kernel inputs and outputs, sized for the header
 * limits (config.ts): x up to 2^18 floats, outputs up to 2^22 (the largest vocabulary).
 * Untouched pages cost no memory.
 */
const X_AT = 0
const HB_AT = 1 << 20
const HB2_AT = 2 << 20
const OUT_AT = 3 << 20
const SCRATCH_BYTES = OUT_AT + (16 << 20)

/**
 * One WebAssembly memory holding the whole checkpoint above a scratch area. The memory is sized
 * once and never grown (growing would detach every view of the weights).
 */
export interface WasmHeap {
  readonly allocate: Allocate
  /** The memory, once `allocate` has run. */
  memory: () => WebAssembly.Memory
}

export function wasmHeap (): WasmHeap {
  let memory: WebAssembly.Memory | null = null
  return {
    allocate: (bytes) => {
      if (memory !== null) throw new Error('a wasm heap holds one checkpoint')
      // shared, so worker threads read the same weights; a shared memory needs a maximum
      const pages = Math.ceil((SCRATCH_BYTES + bytes) / PAGE)
      memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true })
      return onHugePages(new Uint8Array(memory.buffer, SCRATCH_BYTES, bytes))
    },
    memory: () => {
      if (memory === null) throw new Error('load the checkpoint into the wasm heap first')
      return memory
    }
  }
}

/**
 * Matrix work in WebAssembly SIMD on `threads` threads (wasm-threads.ts). The weights are read in
 * place in the heap; each call copies its input vector into scratch and its outputs back (a few
 * KB, negligible).
 */
export async function wasmMatmuls (c: ModelConfig, w: Weights, shard: Shard, heap: WasmHeap, threads: number, opts?: ParallelMatvecOptions): Promise<Matmuls> {
  const memory = heap.memory()
  if (w.rmsFinal.buffer !== memory.buffer) throw new Error('wasm matmuls need weights loaded into their heap')
  const pool = await parallelMatvec(memory, threads, opts)
  const d = shardDims(c, shard)
  const dim = c.dim
  const f32 = (at: number, n: number): Float32Array => new Float32Array(memory.buffer, at, n)
  const x = f32(X_AT, Math.max(dim, d.qDim))
  const hb = f32(HB_AT, d.hidden)
  const hb2 = f32(HB2_AT, d.hidden)
  const out = f32(OUT_AT, Math.max(c.vocabSize, dim, d.qDim + 2 * d.kvDim))
  /** outAt = the first `rows` rows of wv (`stride` floats apart, `cols` wide) times the vector at xAt */
  const job = (outAt: number, wv: Float32Array, stride: number, rows: number, cols: number, xAt = X_AT): MatvecJob =>
    ({ out: outAt, w: wv.byteOffset, strideBytes: 4 * stride, x: xAt, rows, cols })
  return {
    name: 'wasm',
    qkv: (l, xb, q, k, v) => {
      const lw = w.layers[l]
      x.set(xb)
      const kAt = OUT_AT + 4 * d.qDim
      const vAt = kAt + 4 * d.kvDim
      pool.run([
        job(OUT_AT, lw.wq, dim, d.qDim, dim),
        job(kAt, lw.wk, dim, d.kvDim, dim),
        job(vAt, lw.wv, dim, d.kvDim, dim)
      ])
      q.set(out.subarray(0, d.qDim))
      k.set(out.subarray(d.qDim, d.qDim + d.kvDim))
      v.set(out.subarray(d.qDim + d.kvDim, d.qDim + 2 * d.kvDim))
    },
    attentionOut: (l, att, y) => {
      x.set(att)
      pool.run([job(OUT_AT, w.layers[l].wo, d.qDim, dim, d.qDim)])
      y.set(out.subarray(0, dim))
    },
    ffn: (l, xb, y) => {
      const lw = w.layers[l]
      x.set(xb)
      pool.run([
        job(HB_AT, lw.w1, dim, d.hidden, dim),
        job(HB2_AT, lw.w3, dim, d.hidden, dim)
      ])
      swiglu(hb, hb2)
      pool.run([job(OUT_AT, lw.w2, d.hidden, dim, d.hidden, HB_AT)])
      y.set(out.subarray(0, dim))
    },
    classifier: (xv, logits) => {
      x.set(xv)
      pool.run([job(OUT_AT, classifierWeights(w), dim, c.vocabSize, dim)])
      logits.set(out.subarray(0, c.vocabSize))
    },
    close: async () => { await pool.close() }
  }
}
