import { InferenceSettingError } from '../errors.js'
import type { Allocate } from '../files.js'
import { blockType, rowBytes } from '../quant/block-types.js'
import { quantWasmModule } from '../wasm-quant.js'
import type { LinearKernels } from './linear.js'
import type { QTensor } from './weights.js'

/**
 * The matrix products in WebAssembly SIMD (wasm/quant.ts, AssemblyScript): what GGUF models run on
 * where the C kernels are not built; one thread. Generating (below 4 tokens), quantized rows are
 * dotted from their blocks with activations rounded to int16 (relative error near 1e-5); a batch
 * has each row dequantized to float32 once (exactly, as the reference) and dotted with every
 * token of a tile.
 *
 * The kernels read weights where they lie: every matrix must be a view into a heap from
 * wasmHeap(), the allocator loadGguf uses for the wasm engine. Activations and outputs go through
 * the heap's scratch region, a tile of tokens at a time.
 */

const PAGE = 65536
/** wasm32 addresses 4 GiB at most */
const MAX_PAGES = 65536

// The scratch region at the start of each heap: one decoded row, a tile of activations, outputs.
// a decoded row (4 bytes a column) or, on the fused path, 3 tokens' int16 activations with their
// scales and sums (6.75 bytes a column): rows up to 4 MiB / 7 columns
const ROW_BYTES = 4 << 20
const X_BYTES = 4 << 20
const OUT_BYTES = 8 << 20
const SCRATCH_BYTES = ROW_BYTES + X_BYTES + OUT_BYTES
/**
 * Tokens per pass over the weights: each decoded row is dotted with this many tokens' activations
 * while it is in cache (a tile of 16 × 4096 floats is 256 KiB, about an L2).
 */
const TILE = 16

interface Heap {
  readonly f32: Float32Array // the whole memory
  readonly matmul: (type: number, w: number, rowBytes: number, rows: number, cols: number, x: number, nTokens: number, out: number, rowBuf: number) => number
}

// Each heap is one WebAssembly.Memory, sized once for its allocation and never grown: growing
// would detach every view into it (the weights' QTensors). Found from a view through its buffer.
const heaps = new WeakMap<ArrayBufferLike, Heap>()

const module = (): WebAssembly.Module => {
  const m = quantWasmModule()
  if (typeof m === 'string') throw new InferenceSettingError(`--engine wasm: ${m}`)
  return m
}

const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(1)

/**
 * The allocator for weights the wasm kernels will read (readWholeFile's third argument): each call
 * makes a WebAssembly memory holding the kernels' scratch region and the `bytes` asked for, and
 * returns a view of the latter.
 */
export function wasmHeap (): Allocate {
  return (bytes) => {
    const start = SCRATCH_BYTES
    const pages = Math.ceil((start + bytes) / PAGE)
    const advice = 'build the native kernels (`npm run build` with a C compiler installed) to run it'
    if (pages > MAX_PAGES) throw new InferenceSettingError(`the model is ${gib(bytes)} GiB, more than the 4 GiB a WebAssembly memory can hold; ${advice}`)
    const m = module()
    let memory: WebAssembly.Memory
    try {
      memory = new WebAssembly.Memory({ initial: pages, maximum: pages })
    } catch (err) {
      throw new InferenceSettingError(`cannot make a ${gib(pages * PAGE)} GiB WebAssembly memory for the model (${(err as Error).message}); ${advice}`)
    }
    const instance = new WebAssembly.Instance(m, { env: { memory } })
    heaps.set(memory.buffer, { f32: new Float32Array(memory.buffer), matmul: instance.exports.matmul as Heap['matmul'] })
    return new Uint8Array(memory.buffer, start, bytes)
  }
}

/** Whether `bytes` lie in a wasmHeap() heap, where the kernels can read them. */
export const inWasmHeap = (bytes: Uint8Array): boolean => heaps.has(bytes.buffer)

function heapOf (w: QTensor): Heap {
  const heap = heaps.get(w.bytes.buffer)
  if (heap === undefined) {
    throw new Error(`wasm kernels: the weights of ${w.name} are not in a WebAssembly heap; load the model for the wasm engine (loadGguf with engine 'wasm', which reads it through wasmHeap())`)
  }
  return heap
}

/** The shape checks the kernels rely on: they read and write memory unchecked. */
function check (w: QTensor, outLength: number, x: Float32Array, nTokens: number): void {
  const bt = blockType(w.type)
  if (bt === undefined) throw new RangeError(`wasm kernels: ${w.name} has unknown ggml type ${w.type}`)
  const rb = rowBytes(w.type, w.cols)
  if (rb === undefined) throw new RangeError(`wasm kernels: ${w.name} has ${w.cols} columns, not whole ${bt.name} blocks of ${bt.blockElems}`)
  if (rb !== w.rowBytes || w.rows * rb > w.bytes.byteLength) throw new RangeError(`wasm kernels: ${w.name} (${w.rows} × ${w.cols} ${bt.name}) needs ${w.rows * rb} bytes, its view has ${w.bytes.byteLength}`)
  if (w.cols * 7 > ROW_BYTES) throw new RangeError(`wasm kernels: ${w.name} has ${w.cols} columns, more than the ${Math.floor(ROW_BYTES / 7)} they take`)
  if (!Number.isInteger(nTokens) || nTokens < 0) throw new RangeError(`wasm kernels: ${nTokens} tokens`)
  if (x.length < nTokens * w.cols) throw new RangeError(`wasm kernels: ${nTokens} tokens of ${w.cols} need ${nTokens * w.cols} inputs, got ${x.length}`)
  if (outLength < nTokens * w.rows) throw new RangeError(`wasm kernels: ${nTokens} tokens of ${w.rows} need ${nTokens * w.rows} outputs, got ${outLength}`)
}

/**
 * The product over columns [c0, c0 + n) of w (whole blocks) into out, or with `add` into out64:
 * the kernels take the row stride apart from the columns, so a unit of columns is w's own bytes.
 */
function product (w: QTensor, x: Float32Array, nTokens: number, c0: number, n: number, into: { out: Float32Array } | { add: Float64Array }): void {
  const heap = heapOf(w)
  const { rows, cols } = w
  const rowBuf = 0
  const xAt = ROW_BYTES
  const outAt = ROW_BYTES + X_BYTES
  const bt = blockType(w.type) // known: check() passed
  const at = bt === undefined ? 0 : c0 / bt.blockElems * bt.blockBytes
  const tile = Math.min(TILE, Math.floor(X_BYTES / (n * 4)))
  for (let t0 = 0; t0 < nTokens; t0 += tile) {
    const tc = Math.min(tile, nTokens - t0)
    for (let t = 0; t < tc; t++) heap.f32.set(x.subarray((t0 + t) * cols + c0, (t0 + t) * cols + c0 + n), xAt / 4 + t * n)
    // outputs of tc tokens for as many rows as fit (all of them but for huge vocabularies)
    const rowsPerPass = Math.min(rows, Math.floor(OUT_BYTES / (tc * 4)))
    for (let r0 = 0; r0 < rows; r0 += rowsPerPass) {
      const rc = Math.min(rowsPerPass, rows - r0)
      const rc0 = heap.matmul(w.type, w.bytes.byteOffset + r0 * w.rowBytes + at, w.rowBytes, rc, n, xAt, tc, outAt, rowBuf)
      if (rc0 !== 0) throw new RangeError(`wasm kernels: ggml type ${w.type} (${w.name}) is not compiled in`)
      for (let t = 0; t < tc; t++) {
        const from = outAt / 4 + t * rc
        if ('out' in into) into.out.set(heap.f32.subarray(from, from + rc), (t0 + t) * rows + r0)
        else for (let r = 0; r < rc; r++) into.add[(t0 + t) * rows + r0 + r] += heap.f32[from + r]
      }
    }
  }
}

function matmul (out: Float32Array, w: QTensor, x: Float32Array, nTokens: number): void {
  check(w, out.length, x, nTokens)
  product(w, x, nTokens, 0, w.cols, { out })
}

function matmulUnits (out64: Float64Array, w: QTensor, x: Float32Array, nTokens: number, unit: number): void {
  check(w, out64.length, x, nTokens)
  out64.fill(0, 0, nTokens * w.rows)
  for (let c0 = 0; c0 < w.cols; c0 += unit) product(w, x, nTokens, c0, Math.min(unit, w.cols - c0), { add: out64 })
}

/** GGUF matrix products on the WebAssembly kernels; every matrix must be a view into a wasmHeap() heap. */
export function wasmLinear (): LinearKernels {
  module() // fail at model setup, not at the first token
  return {
    name: 'wasm',
    matmul,
    // each matrix on its own: copying the activations again is small beside decoding the weights
    group: (outs, ws, x, nTokens) => { ws.forEach((w, i) => { matmul(outs[i], w, x, nTokens) }) },
    matmulUnits
  }
}
