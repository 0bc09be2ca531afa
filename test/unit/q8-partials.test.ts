import { describe, expect, it } from 'vitest'
import { dequantizePartial, Q8_BLOCK, q8Words, quantizePartial } from '../../src/inference/tensor-plane/q8-partials.js'

describe('partial sums in 8-bit blocks', () => {
  it.each([1, 31, 32, 33, 2048])('round-trips %i values within half a step of each block\'s scale, in 0.28x the bytes', (n) => {
    const v = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 7)))
    const packed = quantizePartial(v)
    expect(packed.length).toBe(q8Words(n))
    const back = new Float32Array(n)
    expect(dequantizePartial(packed, n, back)).toBe(true)
    for (let i = 0; i < n; i++) {
      const from = Math.floor(i / Q8_BLOCK) * Q8_BLOCK
      const amax = Math.max(...Array.from(v.subarray(from, Math.min(from + Q8_BLOCK, n)), Math.abs))
      expect(Math.abs(back[i] - v[i])).toBeLessThanOrEqual(amax / 127 / 2 + 1e-6)
    }
    if (n === 2048) expect(packed.byteLength / v.byteLength).toBeCloseTo(36 / 128)
  })

  it('keeps a block of zeros zero', () => {
    const back = new Float32Array(40).fill(1)
    expect(dequantizePartial(quantizePartial(new Float32Array(40)), 40, back)).toBe(true)
    expect([...back]).toEqual(new Array(40).fill(0))
  })

  it('refuses a payload of the wrong size or with a scale that is not finite', () => {
    const packed = quantizePartial(new Float32Array(64).fill(0.5))
    expect(dequantizePartial(packed, 65, new Float32Array(65))).toBe(false)
    expect(dequantizePartial(packed.subarray(0, 9), 64, new Float32Array(64))).toBe(false)
    packed[9] = Number.POSITIVE_INFINITY // the second block's scale
    expect(dequantizePartial(packed, 64, new Float32Array(64))).toBe(false)
  })
})
