import { nativeKernels, PACKED_TYPE } from '../native.js'
import type { LinearKernels } from './linear.js'
import type { QTensor } from './weights.js'

/** The type id the kernels take w as */
const typeOf = (w: QTensor): number => w.packed === true ? w.type | PACKED_TYPE : w.type

/**
 * The matrix products in C (native/quant.c: 8-bit activations and integer SIMD, as llama.cpp), on
 * `threads` threads; or why the addon cannot be used.
 */
export function nativeLinear (threads: number): LinearKernels | string {
  const k = nativeKernels()
  if (typeof k === 'string') return k
  // reused by every group call, so the hot path allocates nothing
  let types = new Int32Array(4)
  let rows = new Int32Array(4)
  const bytes: Uint8Array[] = []
  return {
    name: 'native',
    matmul: (out, w, x, nTokens) => { k.qmatmul(out, w.bytes, typeOf(w), w.rows, w.cols, x, nTokens, threads) },
    matmulUnits: (out64, w, x, nTokens, unit) => { k.qmatmulUnits(out64, w.bytes, typeOf(w), w.rows, w.cols, unit, x, nTokens, threads) },
    group: (outs, ws, x, nTokens) => {
      if (ws.length === 0) return
      if (types.length < ws.length) { types = new Int32Array(ws.length); rows = new Int32Array(ws.length) }
      const cols = ws[0].cols
      bytes.length = ws.length
      for (let i = 0; i < ws.length; i++) {
        const w = ws[i]
        if (w.cols !== cols) throw new RangeError(`group: ${w.name} has ${w.cols} columns, ${ws[0].name} ${cols}`)
        types[i] = typeOf(w)
        rows[i] = w.rows
        bytes[i] = w.bytes
      }
      try {
        k.qmatmulGroup(outs, bytes, types, rows, cols, x, nTokens, threads)
      } finally {
        bytes.length = 0 // hold no weights between calls
      }
    }
  }
}

/**
 * w repacked in place for the native kernels' faster layout (interleaved rows, native/quant.c
 * qrepack), returned marked packed; w itself where its type has no packed form (or the addon is not
 * built). w's bytes must be its own rows × rowBytes; once packed, only the native kernels can read them.
 */
export function packForNative (w: QTensor): QTensor {
  const k = nativeKernels()
  if (typeof k === 'string' || w.packed === true) return w
  if (w.bytes.length !== w.rows * w.rowBytes) throw new RangeError(`packForNative: ${w.name} holds ${w.bytes.length} bytes, not ${w.rows} rows of ${w.rowBytes}`)
  return k.qrepack(w.bytes, w.type, w.rows, w.cols) ? { ...w, packed: true } : w
}
