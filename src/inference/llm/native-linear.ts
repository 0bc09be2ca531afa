import { nativeKernels } from '../native.js'
import type { LinearKernels } from './linear.js'

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
    matmul: (out, w, x, nTokens) => { k.qmatmul(out, w.bytes, w.type, w.rows, w.cols, x, nTokens, threads) },
    group: (outs, ws, x, nTokens) => {
      if (ws.length === 0) return
      if (types.length < ws.length) { types = new Int32Array(ws.length); rows = new Int32Array(ws.length) }
      const cols = ws[0].cols
      bytes.length = ws.length
      for (let i = 0; i < ws.length; i++) {
        const w = ws[i]
        if (w.cols !== cols) throw new RangeError(`group: ${w.name} has ${w.cols} columns, ${ws[0].name} ${cols}`)
        types[i] = w.type
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
