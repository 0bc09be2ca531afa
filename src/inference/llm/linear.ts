import { matrixRow, type QTensor } from './weights.js'

/**
 * The matrix products of the forward pass over quantized weights, for a batch of `nTokens`
 * inputs laid out token after token: out[t·rows + r] = Σ_j W[r, j]·x[t·cols + j]. Which kernels run
 * them (plain TypeScript, C) is the engine's choice behind this interface.
 */
export interface LinearKernels {
  readonly name: string
  matmul: (out: Float32Array, w: QTensor, x: Float32Array, nTokens: number) => void
  /** Several matrices of one input (q/k/v, gate/up) in one go, so the input is prepared once. */
  group: (outs: readonly Float32Array[], ws: readonly QTensor[], x: Float32Array, nTokens: number) => void
  /**
   * matmul into float64, the columns taken `unit` at a time (the last unit may be short): each
   * unit's product in float32, the units summed in float64 in column order. The products a ring
   * splits along their columns (attention output, down) run this way, on whole units, so members'
   * partials add up to one device's sum exactly (forward.ts rounds it to float32 once).
   */
  matmulUnits: (out64: Float64Array, w: QTensor, x: Float32Array, nTokens: number, unit: number) => void
}

/**
 * The reference: each row dequantized to float32 and dotted with float32 activations in double
 * precision. Slow (V8 does not vectorise), exact up to the weights' own rounding: what tests
 * compare the fast kernels against.
 */
export function tsLinear (): LinearKernels {
  let row = new Float32Array(0)
  // matmul is the product in one unit of all the columns: its float32 rounding is the store's
  const product = (out: Float32Array | Float64Array, w: QTensor, x: Float32Array, nTokens: number, unit: number): void => {
    if (row.length < w.cols) row = new Float32Array(w.cols)
    const { rows, cols } = w
    for (let r = 0; r < rows; r++) {
      matrixRow(w, r, row)
      for (let t = 0; t < nTokens; t++) {
        const at = t * cols
        let sum = 0
        for (let c0 = 0; c0 < cols; c0 += unit) {
          let part = 0
          for (let j = c0; j < Math.min(cols, c0 + unit); j++) part += row[j] * x[at + j]
          sum += Math.fround(part) // as the fast kernels: a unit's sum in float32
        }
        out[t * rows + r] = sum
      }
    }
  }
  const matmul = (out: Float32Array, w: QTensor, x: Float32Array, nTokens: number): void => { product(out, w, x, nTokens, w.cols) }
  return {
    name: 'ts',
    matmul,
    group: (outs, ws, x, nTokens) => { ws.forEach((w, i) => { matmul(outs[i], w, x, nTokens) }) },
    matmulUnits: product
  }
}
