import { describe, expect, it } from 'vitest'
import { readGguf } from '../../src/inference/gguf/reader.js'
import { llmModel, loadGgufWeights } from '../../src/inference/llm/load.js'
import { nativeLinear, packForNative } from '../../src/inference/llm/native-linear.js'
import type { QTensor } from '../../src/inference/llm/weights.js'
import { nativeKernels } from '../../src/inference/native.js'
import { blockType } from '../../src/inference/quant/block-types.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'
import { colsOf, random, randomMatrix, randomVector, relativeError } from './quant-random.js'

const k = nativeKernels()
if (typeof k === 'string') console.warn(`skipping the packed kernel tests: ${k}`)

/** The types native/quant.c has a packed layout for (on AVX-512 VNNI; elsewhere packForNative changes nothing) */
const PACKED_TYPES = [8, 2, 12, 14]

const linearOn = (threads: number): ReturnType<typeof nativeLinear> & object => {
  const linear = nativeLinear(threads)
  if (typeof linear === 'string') throw new Error(linear)
  return linear
}

/** w packed on a copy of its bytes (w stays as it is) */
const packedCopy = (w: QTensor): QTensor => packForNative({ ...w, bytes: w.bytes.slice() })

describe.skipIf(typeof k === 'string')('packed matrices (native/quant.c qrepack)', () => {
  for (const type of PACKED_TYPES) {
    const name = blockType(type)?.name ?? String(type)
    // rows a multiple of the group of 16, and not (a tail of plain rows after the groups)
    for (const rows of [48, 37]) {
      it(`${name}, ${rows} rows: the same products as the plain layout for 1, 3, 17 and 130 tokens on 1 and 2 threads`, () => {
        const rand = random(type * 100 + rows)
        const w = randomMatrix(type, rows, colsOf(type), rand)
        const p = packedCopy(w)
        if (p === w || p.packed !== true) return // no packed kernels in this build
        expect(p.bytes).not.toEqual(w.bytes)
        for (const nTokens of [1, 3, 17, 130]) {
          const x = randomVector(nTokens * w.cols, rand)
          const plain = new Float32Array(nTokens * rows)
          linearOn(1).matmul(plain, w, x, nTokens)
          for (const threads of [1, 2]) {
            const out = new Float32Array(nTokens * rows).fill(NaN)
            linearOn(threads).matmul(out, p, x, nTokens)
            // the same integer dots; only the float sums' order differs
            expect(relativeError(out, plain), `${nTokens} tokens, ${threads} threads`).toBeLessThan(1e-5)
          }
        }
      })
    }
  }

  it('computes a group of packed and plain matrices (with and without tails) as separate products', () => {
    const rand = random(5)
    const cols = 512
    const plain = [randomMatrix(12, 40, cols, rand), randomMatrix(14, 17, cols, rand), randomMatrix(2, 33, cols, rand),
      randomMatrix(8, 64, cols, rand), randomMatrix(6, 9, cols, rand), randomMatrix(12, 32, cols, rand)]
    const ws = plain.map(packedCopy)
    for (const nTokens of [1, 6, 130]) {
      const x = randomVector(nTokens * cols, rand)
      for (const threads of [1, 2]) {
        const linear = linearOn(threads)
        const outs = ws.map((w) => new Float32Array(nTokens * w.rows))
        linear.group(outs, ws, x, nTokens)
        ws.forEach((w, i) => {
          const alone = new Float32Array(nTokens * w.rows)
          linear.matmul(alone, w, x, nTokens)
          expect(outs[i], `${w.name}, ${nTokens} tokens, ${threads} threads`).toEqual(alone)
          const reference = new Float32Array(nTokens * w.rows)
          linear.matmul(reference, plain[i], x, nTokens)
          expect(relativeError(outs[i], reference), `${w.name} against its plain layout`).toBeLessThan(1e-5)
        })
      }
    }
  })

  it('leaves types without a packed layout as they are, and refuses a view that is not the matrix', () => {
    const rand = random(3)
    for (const type of [0, 1, 6, 13]) {
      const w = randomMatrix(type, 32, colsOf(type), rand)
      const bytes = w.bytes.slice()
      expect(packForNative(w)).toBe(w)
      expect(w.bytes).toEqual(bytes)
    }
    const w = randomMatrix(2, 32, 64, rand)
    expect(() => packForNative({ ...w, bytes: w.bytes.subarray(1) })).toThrow(RangeError)
    const p = packForNative(w)
    expect(packForNative(p)).toBe(p) // not twice
  })
})

describe.skipIf(typeof k === 'string' || SHARED_DIR === null)('a GGUF model run natively', () => {
  it('is packed once, and then refused by the ts and wasm kernels', async () => {
    const g = await loadGgufWeights(await readGguf(sharedPath('models/gguf/stories260K.q4_0.gguf')))
    const first = llmModel(g, 'native', 1)
    const second = llmModel(g, 'native', 2)
    expect(second.weights).toBe(first.weights)
    expect(first.weights.tokEmb).toBe(g.weights.tokEmb)
    if (first.weights.layers[0].wq.packed !== true) return // no packed kernels in this build
    expect(() => llmModel(g, 'ts', 1)).toThrow(/repacked for the native kernels/)
    expect(() => llmModel(g, 'wasm', 1)).toThrow(/repacked for the native kernels/)
  })
})
