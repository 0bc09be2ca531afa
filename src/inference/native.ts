import { createRequire } from 'node:module'

/** native/kernels.c, as its N-API binding exposes it (bounds are checked in C). */
export interface NativeKernels {
  matvec: (out: Float32Array, w: Float32Array, stride: number, x: Float32Array, rows: number, cols: number, threads: number) => void
  qkv: (q: Float32Array, k: Float32Array, v: Float32Array, wq: Float32Array, wk: Float32Array, wv: Float32Array, x: Float32Array,
    dim: number, qRows: number, kvRows: number, threads: number) => void
  ffn: (out: Float32Array, hb: Float32Array, w1: Float32Array, w3: Float32Array, w2: Float32Array, x: Float32Array, dim: number, hidden: number, threads: number) => void
  /** Causal attention of nTokens queries at positions pos0.. (q and att: nTokens rows of nHeads·headSize); head h reads kv head ⌊(headOffset + h) / kvMul⌋ */
  attend: (att: Float32Array, scores: Float32Array, q: Float32Array, keyCache: Float32Array, valueCache: Float32Array,
    nHeads: number, headSize: number, kvDim: number, kvMul: number, positions: number, pos0: number, nTokens: number, headOffset: number, threads: number) => void
  adviseHugePages: (bytes: Uint8Array) => void
  /** gate = silu(gate) · up over the first n values */
  swiglu: (gate: Float32Array, up: Float32Array, n: number) => void
  /**
   * out[t·rows + r] = Σ_j W[r, j]·x[t·cols + j] for t < nTokens, W a rows × cols matrix in the
   * bytes of its ggml `type` (quant/block-types.ts); quantized types dot 8-bit quantized
   * activations, as llama.cpp does (native/quant.c). Throws on an unknown type, cols not in whole
   * blocks, or a view too short.
   */
  qmatmul: (out: Float32Array, w: Uint8Array, type: number, rows: number, cols: number, x: Float32Array, nTokens: number, threads: number) => void
  /**
   * qmatmul of each ws[i] (types[i], rows[i]) with the same x, in one parallel region with x
   * quantized once. types and rows may be longer than ws; at most 16 matrices.
   */
  qmatmulGroup: (outs: readonly Float32Array[], ws: readonly Uint8Array[], types: Int32Array, rows: Int32Array, cols: number,
    x: Float32Array, nTokens: number, threads: number) => void
  /**
   * qmatmul into out64, the columns dotted a unit of `unit` columns (whole blocks; the last unit
   * may be short) at a time in float32 and the units summed in float64: the product a ring's
   * members split along the columns (unit boundaries) and sum to one device's exactly.
   */
  qmatmulUnits: (out64: Float64Array, w: Uint8Array, type: number, rows: number, cols: number, unit: number, x: Float32Array, nTokens: number, threads: number) => void
  /**
   * Lays w (rows × cols of ggml `type`) out in place for the kernels' packed form, taken as type
   * `type | PACKED_TYPE` by qmatmul: groups of interleaved rows (native/quant.c), rows past the last
   * whole group unchanged. False, w untouched, where the type has no packed form in this build.
   */
  qrepack: (w: Uint8Array, type: number, rows: number, cols: number) => boolean
}

/** Added to a ggml type id for a matrix that qrepack has repacked */
export const PACKED_TYPE = 0x100

// built by scripts/build-native.mjs at install; absent where the machine had no C compiler
const ADDON = '../../native/build/Release/mesh_kernels.node'
let addon: NativeKernels | string | undefined

/** The compiled kernels, or why they cannot be used (--engine auto then runs wasm). */
export function nativeKernels (): NativeKernels | string {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(ADDON) as NativeKernels
    } catch (err) {
      addon = `the native kernels are not built (${(err as Error).message.split('\n')[0]}); run \`npm run build\` with a C compiler (gcc or clang) installed`
    }
  }
  return addon
}

/** Huge pages for a fresh buffer that will hold weights, when the native addon is there (see kernels.c). */
export function onHugePages (bytes: Uint8Array): Uint8Array {
  const k = nativeKernels()
  if (typeof k !== 'string' && bytes.byteLength >= 4 << 20) k.adviseHugePages(bytes)
  return bytes
}
