import { describe, expect, it } from 'vitest'
import { tsLinear } from '../../src/inference/llm/linear.js'
import { nativeLinear } from '../../src/inference/llm/native-linear.js'
import { nativeKernels } from '../../src/inference/native.js'
import { blockType } from '../../src/inference/quant/block-types.js'
import { colsOf, FLOAT_TYPES, QUANT_TYPES, random, randomMatrix, randomVector, relativeError } from './quant-random.js'

const k = nativeKernels()
if (typeof k === 'string') console.warn(`skipping the quantized kernel tests: ${k}`)

describe.skipIf(typeof k === 'string')('quantized matrix products (native/quant.c)', () => {
  const native = (): Exclude<typeof k, string> => k as Exclude<typeof k, string>
  const reference = tsLinear()

  for (const type of [...FLOAT_TYPES, ...QUANT_TYPES]) {
    const name = blockType(type)?.name ?? String(type)
    // the float types are dotted in float32; the others with activations rounded to 8 bits (about 0.4 % here)
    const tolerance = FLOAT_TYPES.has(type) ? 1e-5 : 0.01
    it(`${name}: matches the TypeScript reference for 1, 3 and 17 tokens on 1 and 2 threads`, () => {
      const rand = random(type + 1)
      const w = randomMatrix(type, 70, colsOf(type), rand)
      for (const nTokens of [1, 3, 17]) {
        const x = randomVector(nTokens * w.cols, rand)
        const expected = new Float32Array(nTokens * w.rows)
        reference.matmul(expected, w, x, nTokens)
        for (const threads of [1, 2]) {
          const linear = nativeLinear(threads)
          if (typeof linear === 'string') throw new Error(linear)
          const out = new Float32Array(nTokens * w.rows).fill(NaN)
          linear.matmul(out, w, x, nTokens)
          expect(relativeError(out, expected), `${nTokens} tokens, ${threads} threads`).toBeLessThan(tolerance)
        }
      }
    })
  }

  it('computes a group (mixed types and activation kinds) exactly as separate products', () => {
    const rand = random(99)
    const cols = 512
    const ws = [randomMatrix(12, 40, cols, rand), randomMatrix(14, 17, cols, rand), randomMatrix(2, 33, cols, rand),
      randomMatrix(3, 9, cols, rand), randomMatrix(1, 21, cols, rand)]
    for (const nTokens of [1, 6]) {
      const x = randomVector(nTokens * cols, rand)
      for (const threads of [1, 2]) {
        const linear = nativeLinear(threads)
        if (typeof linear === 'string') throw new Error(linear)
        const outs = ws.map((w) => new Float32Array(nTokens * w.rows))
        linear.group(outs, ws, x, nTokens)
        ws.forEach((w, i) => {
          const alone = new Float32Array(nTokens * w.rows)
          linear.matmul(alone, w, x, nTokens)
          expect(outs[i]).toEqual(alone)
        })
      }
    }
  })

  it('refuses bad calls instead of reading past a view', () => {
    const rand = random(7)
    const w = randomMatrix(2, 8, 64, rand)
    const x = randomVector(2 * 64, rand)
    const out = new Float32Array(2 * 8)
    const call = (o: Float32Array, b: Uint8Array, type: number, rows: number, cols: number, xs: Float32Array, nTokens: number): void => {
      native().qmatmul(o, b, type, rows, cols, xs, nTokens, 1)
    }
    call(out, w.bytes, 2, 8, 64, x, 2)
    expect(() => { call(out.subarray(1), w.bytes, 2, 8, 64, x, 2) }).toThrow(RangeError)
    expect(() => { call(out, w.bytes.subarray(1), 2, 8, 64, x, 2) }).toThrow(RangeError)
    expect(() => { call(out, w.bytes, 2, 8, 64, x.subarray(1), 2) }).toThrow(RangeError)
    expect(() => { call(out, w.bytes, 2, 9, 64, x, 2) }).toThrow(RangeError)
    expect(() => { call(out, w.bytes, 2, 8, 48, x, 2) }).toThrow(RangeError) // not whole blocks
    expect(() => { call(out, w.bytes, 5, 8, 64, x, 2) }).toThrow(RangeError) // no such type
    expect(() => { call(out, w.bytes, 12, 1, 64, x, 2) }).toThrow(RangeError) // K-quants need blocks of 256
    expect(() => { call(out, w.bytes, 2, -1, 64, x, 2) }).toThrow(TypeError)
    expect(() => { call(out, new Float32Array(w.bytes.length) as unknown as Uint8Array, 2, 8, 64, x, 2) }).toThrow(TypeError)
    const types = Int32Array.of(2, 2); const rows = Int32Array.of(8, 8)
    const group = (outs: Float32Array[], ws: Uint8Array[], t: Int32Array, r: Int32Array): void => {
      native().qmatmulGroup(outs, ws, t, r, 64, x, 2, 2)
    }
    group([out, new Float32Array(16)], [w.bytes, w.bytes], types, rows)
    expect(() => { group([out], [w.bytes, w.bytes], types, rows) }).toThrow(RangeError)
    expect(() => { group([out, out], [w.bytes, w.bytes], types.subarray(1), rows) }).toThrow(RangeError)
    expect(() => { group([out, new Float32Array(15)], [w.bytes, w.bytes], types, rows) }).toThrow(RangeError)
    expect(() => { group([out, x], [w.bytes, new Uint8Array(0)], types, rows) }).toThrow(RangeError)
    expect(() => { group([out, w.bytes as unknown as Float32Array], [w.bytes, w.bytes], types, rows) }).toThrow(TypeError)
    expect(() => { group([out, out], [w.bytes, w.bytes], Int32Array.of(2, 99), rows) }).toThrow(RangeError)
  })
})
