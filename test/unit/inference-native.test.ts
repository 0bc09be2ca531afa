import { describe, expect, it } from 'vitest'
import { matvec, swiglu } from '../../src/inference/kernels.js'
import { nativeKernels } from '../../src/inference/native.js'

const k = nativeKernels()
if (typeof k === 'string') console.warn(`skipping the native kernel tests: ${k}`)

describe.skipIf(typeof k === 'string')('native kernels (native/kernels.c)', () => {
  const native = (): Exclude<typeof k, string> => k as Exclude<typeof k, string>

  it('computes a strided matrix-vector product like the TypeScript kernel, on 1 and 2 threads', () => {
    const rows = 37; const cols = 29; const stride = 31
    const w = Float32Array.from({ length: rows * stride }, (_, i) => Math.sin(i))
    const x = Float32Array.from({ length: cols }, (_, i) => Math.cos(i))
    const expected = new Float32Array(rows)
    matvec(expected, w, 0, stride, x, rows, cols)
    for (const threads of [1, 2]) {
      const out = new Float32Array(rows)
      native().matvec(out, w, stride, x, rows, cols, threads)
      out.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 4))
    }
  })

  it('refuses views too small for the product instead of reading past them', () => {
    const w = new Float32Array(10 * 8)
    expect(() => { native().matvec(new Float32Array(10), w, 8, new Float32Array(8), 11, 8, 1) }).toThrow(RangeError)
    expect(() => { native().matvec(new Float32Array(9), w, 8, new Float32Array(8), 10, 8, 1) }).toThrow(RangeError)
    expect(() => { native().matvec(new Float32Array(10), w, 8, new Float32Array(7), 10, 8, 1) }).toThrow(RangeError)
    expect(() => { native().matvec(new Float32Array(10), w, 8, new Float32Array(8), -1, 8, 1) }).toThrow(TypeError)
  })

  it('runs q/k/v and the FFN (SwiGLU included) like the separate TypeScript steps, and refuses short views', () => {
    const dim = 12; const hidden = 20; const qRows = 12; const kvRows = 6
    const rand = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 31 + i) / 2)
    const x = rand(dim, 1); const wq = rand(qRows * dim, 2); const wk = rand(kvRows * dim, 3); const wv = rand(kvRows * dim, 4)
    const w1 = rand(hidden * dim, 5); const w3 = rand(hidden * dim, 6); const w2 = rand(dim * hidden, 7)
    const [q, k, v] = [new Float32Array(qRows), new Float32Array(kvRows), new Float32Array(kvRows)]
    native().qkv(q, k, v, wq, wk, wv, x, dim, qRows, kvRows, 2)
    for (const [out, w, rows] of [[q, wq, qRows], [k, wk, kvRows], [v, wv, kvRows]] as const) {
      const expected = new Float32Array(rows)
      matvec(expected, w, 0, dim, x, rows, dim)
      out.forEach((val, i) => expect(val).toBeCloseTo(expected[i], 5))
    }
    const hb = new Float32Array(hidden); const hb2 = new Float32Array(hidden); const expected = new Float32Array(dim)
    matvec(hb, w1, 0, dim, x, hidden, dim)
    matvec(hb2, w3, 0, dim, x, hidden, dim)
    swiglu(hb, hb2)
    matvec(expected, w2, 0, hidden, hb, dim, hidden)
    const out = new Float32Array(dim)
    native().ffn(out, new Float32Array(hidden), w1, w3, w2, x, dim, hidden, 2)
    out.forEach((val, i) => expect(val).toBeCloseTo(expected[i], 5))
    expect(() => { native().qkv(q, k, v, wq, wk, wv.subarray(1), x, dim, qRows, kvRows, 1) }).toThrow(RangeError)
    expect(() => { native().ffn(out, new Float32Array(hidden - 1), w1, w3, w2, x, dim, hidden, 1) }).toThrow(RangeError)
  })

  it('attends over the cached positions and refuses a position past the cache', () => {
    const hs = 4; const positions = 3
    const q = Float32Array.of(1, 0, 0, 0)
    const keys = Float32Array.of(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    const values = Float32Array.of(1, 1, 1, 1, 3, 3, 3, 3, 0, 0, 0, 0)
    const att = new Float32Array(hs); const scores = new Float32Array(positions)
    native().attend(att, scores, q, keys, values, 1, hs, hs, 1, positions, 1, 1, 0, 1)
    // scores 1/2 and 0 → softmax weights e^0.5/(e^0.5+1) and 1/(e^0.5+1)
    const a = Math.exp(0.5) / (Math.exp(0.5) + 1)
    expect(att[0]).toBeCloseTo(a * 1 + (1 - a) * 3, 5)
    expect(() => { native().attend(att, scores, q, keys, values, 1, hs, hs, 1, positions, 3, 1, 0, 1) }).toThrow(RangeError)
  })
})
