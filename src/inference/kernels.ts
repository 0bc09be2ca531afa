/**
 * The small kernels of the forward pass, in plain TypeScript. Float32Array storage, double
 * accumulation (V8 computes in doubles anyway; the rounding happens on store).
 */

/** o = w * x / sqrt(mean(x²) + 1e-5); `o` may be `x`. */
export function rmsnorm (o: Float32Array, x: Float32Array, w: Float32Array): void {
  const n = x.length
  let ss = 0
  for (let j = 0; j < n; j++) ss += x[j] * x[j]
  const inv = 1 / Math.sqrt(Math.fround(ss / n) + 1e-5)
  for (let j = 0; j < n; j++) o[j] = w[j] * (inv * x[j])
}

/** In-place softmax of x[at..at+n). */
export function softmax (x: Float32Array, at: number, n: number): void {
  let max = x[at]
  for (let i = at + 1; i < at + n; i++) if (x[i] > max) max = x[i]
  let sum = 0
  for (let i = at; i < at + n; i++) {
    x[i] = Math.exp(x[i] - max)
    sum += x[i]
  }
  for (let i = at; i < at + n; i++) x[i] = x[i] / sum
}

/**
 * out[i] = Σ_j w[wOffset + i·rowStride + j] · x[j] for i < rows, j < cols.
 * `rowStride` larger than `cols` reads a block of columns (a shard's slice of Wo or W2).
 * Unrolled by 4 with independent sums: V8 does not vectorise, but this halves the loop overhead
 * and lets the CPU overlap the multiplies (about 2.7 GFLOP/s on this machine, see STACK.md).
 */
export function matvec (out: Float32Array, w: Float32Array, wOffset: number, rowStride: number, x: Float32Array, rows: number, cols: number): void {
  const tail = cols & ~3
  for (let i = 0; i < rows; i++) {
    const r = wOffset + i * rowStride
    let s0 = 0; let s1 = 0; let s2 = 0; let s3 = 0
    let j = 0
    for (; j < tail; j += 4) {
      s0 += w[r + j] * x[j]
      s1 += w[r + j + 1] * x[j + 1]
      s2 += w[r + j + 2] * x[j + 2]
      s3 += w[r + j + 3] * x[j + 3]
    }
    for (; j < cols; j++) s0 += w[r + j] * x[j]
    out[i] = (s0 + s1) + (s2 + s3)
  }
}

/** hb = silu(hb) * hb2, the SwiGLU gate. */
export function swiglu (hb: Float32Array, hb2: Float32Array): void {
  for (let i = 0; i < hb.length; i++) {
    const v = hb[i]
    hb[i] = (v / (1 + Math.exp(-v))) * hb2[i]
  }
}

/** x += y */
export function addInPlace (x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i]
}

/**
 * Causal attention of heads [0, nHeads) at `pos` over one layer's cache (rows kvDim apart):
 * scores q·k/√headSize over positions 0..pos, softmax, then the weighted sum of v into att.
 * Query head h reads kv head (headOffset + h) / kvMul (grouped-query attention; a ring member's
 * heads may start inside a kv group). kernels.c `attend` in TypeScript.
 */
export function attend (att: Float32Array, scores: Float32Array, q: Float32Array, keyCache: Float32Array, valueCache: Float32Array,
  nHeads: number, headSize: number, kvDim: number, kvMul: number, positions: number, pos: number, headOffset = 0): void {
  const scale = Math.sqrt(headSize)
  for (let h = 0; h < nHeads; h++) {
    const qAt = h * headSize
    const kvAt = Math.floor((headOffset + h) / kvMul) * headSize
    const row = h * positions
    for (let t = 0; t <= pos; t++) {
      const kAt = t * kvDim + kvAt
      let score = 0
      for (let i = 0; i < headSize; i++) score += q[qAt + i] * keyCache[kAt + i]
      scores[row + t] = score / scale
    }
    softmax(scores, row, pos + 1)
    att.fill(0, qAt, qAt + headSize)
    for (let t = 0; t <= pos; t++) {
      const a = scores[row + t]
      const vAt = t * kvDim + kvAt
      for (let i = 0; i < headSize; i++) att[qAt + i] += a * valueCache[vAt + i]
    }
  }
}
