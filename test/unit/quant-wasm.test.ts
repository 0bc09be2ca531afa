import { describe, expect, it } from 'vitest'
import { InferenceSettingError } from '../../src/inference/errors.js'
import { tsLinear } from '../../src/inference/llm/linear.js'
import { wasmHeap, wasmLinear } from '../../src/inference/llm/wasm-linear.js'
import { blockType } from '../../src/inference/quant/block-types.js'
import { colsOf, FLOAT_TYPES, QUANT_TYPES, random, randomMatrix, randomVector, relativeError } from './quant-random.js'

describe('quantized matrix products in WebAssembly (wasm/quant.ts)', () => {
  const reference = tsLinear()
  const wasm = wasmLinear()
  // the float types are dotted in float32; the quantized ones, below 4 tokens, with activations
  // rounded to 16 bits (about 2e-5 here), and from 4 tokens dequantized exactly as the reference
  const toleranceOf = (type: number): number => FLOAT_TYPES.has(type) ? 1e-5 : 1e-4

  for (const type of [...FLOAT_TYPES, ...QUANT_TYPES]) {
    const name = blockType(type)?.name ?? String(type)
    const tolerance = toleranceOf(type)
    it(`${name}: matches the TypeScript reference for 1, 3 and 17 tokens`, () => {
      const rand = random(type + 1)
      const w = randomMatrix(type, 70, colsOf(type), rand, wasmHeap())
      for (const nTokens of [1, 3, 17]) { // 17: four-token passes, a lone token, and a second tile
        const x = randomVector(nTokens * w.cols, rand)
        const expected = new Float32Array(nTokens * w.rows)
        reference.matmul(expected, w, x, nTokens)
        const out = new Float32Array(nTokens * w.rows).fill(NaN)
        wasm.matmul(out, w, x, nTokens)
        expect(relativeError(out, expected), `${nTokens} tokens`).toBeLessThan(tolerance)
      }
    })
  }

  it('computes a group (mixed types, one heap) as the reference does', () => {
    const rand = random(99)
    const cols = 512
    const heap = wasmHeap()
    const ws = [12, 14, 2, 3, 1, 13, 6, 7, 8, 30, 0].map((type, i) => randomMatrix(type, 9 + 4 * i, cols, rand, heap))
    for (const nTokens of [1, 3, 17]) {
      const x = randomVector(nTokens * cols, rand)
      const outs = ws.map((w) => new Float32Array(nTokens * w.rows).fill(NaN))
      wasm.group(outs, ws, x, nTokens)
      ws.forEach((w, i) => {
        const expected = new Float32Array(nTokens * w.rows)
        reference.matmul(expected, w, x, nTokens)
        expect(relativeError(outs[i], expected), `${w.name}, ${nTokens} tokens`).toBeLessThan(toleranceOf(w.type))
      })
    }
  })

  it('reads weights at any offset, and more rows than one pass of outputs holds', () => {
    const rand = random(5)
    const unaligned = randomMatrix(1, 5, 77, rand, (n) => wasmHeap()(n + 3).subarray(3))
    const tall = randomMatrix(2, 140_000, 32, rand, wasmHeap()) // 17 tokens of 140k rows: two passes
    for (const w of [unaligned, tall]) {
      const x = randomVector(17 * w.cols, rand)
      const expected = new Float32Array(17 * w.rows)
      reference.matmul(expected, w, x, 17)
      const out = new Float32Array(17 * w.rows).fill(NaN)
      wasm.matmul(out, w, x, 17)
      expect(relativeError(out, expected), w.name).toBeLessThan(toleranceOf(w.type))
    }
  })

  it('refuses weights outside a wasm heap, bad shapes and models over 4 GiB', () => {
    const rand = random(7)
    const w = randomMatrix(2, 8, 64, rand, wasmHeap())
    const x = randomVector(2 * 64, rand)
    const out = new Float32Array(2 * 8)
    wasm.matmul(out, w, x, 2)
    expect(() => { wasm.matmul(out, { ...w, bytes: w.bytes.slice() }, x, 2) }).toThrow(/not in a WebAssembly heap/)
    expect(() => { wasm.matmul(out.subarray(1), w, x, 2) }).toThrow(RangeError)
    expect(() => { wasm.matmul(out, w, x.subarray(1), 2) }).toThrow(RangeError)
    expect(() => { wasm.matmul(out, { ...w, rows: 9 }, x, 2) }).toThrow(RangeError) // past the view
    expect(() => { wasm.matmul(out, { ...w, cols: 48 }, x, 2) }).toThrow(RangeError) // not whole blocks
    expect(() => { wasm.matmul(out, { ...w, type: 5 }, x, 2) }).toThrow(RangeError) // no such type
    expect(() => { wasmHeap()(4.5 * 2 ** 30) }).toThrow(InferenceSettingError)
    expect(() => { wasmHeap()(4.5 * 2 ** 30) }).toThrow(/more than the 4 GiB a WebAssembly memory can hold; build the native kernels/)
  })
})
