import { describe, expect, it } from 'vitest'
import { matvec } from '../../src/inference/kernels.js'
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

  it('attends over the cached positions and refuses a position past the cache', () => {
    const hs = 4; const positions = 3
    const q = Float32Array.of(1, 0, 0, 0)
    const keys = Float32Array.of(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    const values = Float32Array.of(1, 1, 1, 1, 3, 3, 3, 3, 0, 0, 0, 0)
    const att = new Float32Array(hs); const scores = new Float32Array(positions)
    native().attend(att, scores, q, keys, values, 1, hs, hs, 1, positions, 1, 1)
    // scores 1/2 and 0 → softmax weights e^0.5/(e^0.5+1) and 1/(e^0.5+1)
    const a = Math.exp(0.5) / (Math.exp(0.5) + 1)
    expect(att[0]).toBeCloseTo(a * 1 + (1 - a) * 3, 5)
    expect(() => { native().attend(att, scores, q, keys, values, 1, hs, hs, 1, positions, 3, 1) }).toThrow(RangeError)
  })
})
