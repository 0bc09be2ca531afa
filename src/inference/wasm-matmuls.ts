import type { Weights } from './checkpoint.js'
import type { ModelConfig } from './config.js'
import type { Allocate } from './files.js'
import { swiglu } from './kernels.js'
import { classifierWeights, type Matmuls } from './matmuls.js'
import { shardDims, type Shard } from './shard.js'
import { instantiateMatvec, type WasmMatvec } from './wasm-matvec.js'

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
      memory = new WebAssembly.Memory({ initial: Math.ceil((SCRATCH_BYTES + bytes) / PAGE) })
      return new Uint8Array(memory.buffer, SCRATCH_BYTES, bytes)
    },
    memory: () => {
      if (memory === null) throw new Error('load the checkpoint into the wasm heap first')
      return memory
    }
  }
}

/**
 * Matrix work in WebAssembly SIMD, one thread. The weights are read in place in the heap; each
 * call copies its input vector into scratch and its output back (a few KB, negligible).
 */
export function wasmMatmuls (c: ModelConfig, w: Weights, shard: Shard, heap: WasmHeap): Matmuls {
  const memory = heap.memory()
  if (w.tokEmb.buffer !== memory.buffer) throw new Error('wasm matmuls need weights loaded into their heap')
  const mv: WasmMatvec = instantiateMatvec(memory)
  const d = shardDims(c, shard)
  const dim = c.dim
  const f32 = (at: number, n: number): Float32Array => new Float32Array(memory.buffer, at, n)
  const x = f32(X_AT, Math.max(dim, d.qDim))
  const hb = f32(HB_AT, d.hidden)
  const hb2 = f32(HB2_AT, d.hidden)
  const out = f32(OUT_AT, Math.max(c.vocabSize, dim, d.qDim))
  /** y = the first `rows` rows of w, each `stride` floats apart and `cols` wide, times x */
  const product = (y: Float32Array, wv: Float32Array, stride: number, rows: number, cols: number): void => {
    mv(OUT_AT, wv.byteOffset, 4 * stride, X_AT, rows, cols)
    y.set(out.subarray(0, rows))
  }
  return {
    name: 'wasm',
    qkv: (l, xb, q, k, v) => {
      const lw = w.layers[l]
      x.set(xb)
      product(q, lw.wq, dim, d.qDim, dim)
      product(k, lw.wk, dim, d.kvDim, dim)
      product(v, lw.wv, dim, d.kvDim, dim)
    },
    attentionOut: (l, att, y) => {
      x.set(att)
      product(y, w.layers[l].wo, d.qDim, dim, d.qDim)
    },
    ffn: (l, xb, y) => {
      const lw = w.layers[l]
      x.set(xb)
      mv(HB_AT, lw.w1.byteOffset, 4 * dim, X_AT, d.hidden, dim)
      mv(HB2_AT, lw.w3.byteOffset, 4 * dim, X_AT, d.hidden, dim)
      swiglu(hb, hb2)
      mv(OUT_AT, lw.w2.byteOffset, 4 * d.hidden, HB_AT, dim, d.hidden)
      y.set(out.subarray(0, dim))
    },
    classifier: (xv, logits) => {
      x.set(xv)
      product(logits, classifierWeights(w), dim, c.vocabSize, dim)
    },
    close: async () => {}
  }
}
