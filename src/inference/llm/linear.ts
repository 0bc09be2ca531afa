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
}

/**
 * The reference: each row dequantized to float32 and dotted with float32 activations in double
 * precision. Slow (V8 does not vectorise), exact up to the weights' own rounding: what tests
 * compare the fast kernels against.
 */
export function tsLinear (): LinearKernels {
  let row = new Float32Array(0)
  const matmul = (out: Float32Array, w: QTensor, x: Float32Array, nTokens: number): void => {
    if (row.length < w.cols) row = new Float32Array(w.cols)
    const { rows, cols } = w
    for (let r = 0; r < rows; r++) {
      matrixRow(w, r, row)
      for (let t = 0; t < nTokens; t++) {
        const at = t * cols
        let sum = 0
        for (let j = 0; j < cols; j++) sum += row[j] * x[at + j]
        out[t * rows + r] = sum
      }
    }
  }
  return {
    name: 'ts',
    matmul,
    group: (outs, ws, x, nTokens) => { ws.forEach((w, i) => { matmul(outs[i], w, x, nTokens) }) }
  }
}
