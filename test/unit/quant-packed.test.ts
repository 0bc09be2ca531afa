import { describe, expect, it } from 'vitest'
import { readGguf } from '../../src/inference/gguf/reader.js'
import { llmModel, loadGgufWeights } from '../../src/inference/llm/load.js'
import { nativeLinear, packForNative } from '../../src/inference/llm/native-linear.js'
import type { QTensor } from '../../src/inference/llm/weights.js'
import { nativeKernels } from '../../src/inference/native.js'
import { blockType } from '../../src/inference/quant/block-types.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'
import { colsOf, FLOAT_TYPES, QUANT_TYPES, random, randomMatrix, randomVector, relativeError } from './quant-random.js'

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

  it('gives each token the same product whatever number of tokens shares the call, for every type, plain and packed', () => {
    const rand = random(11)
    for (const type of [...FLOAT_TYPES, ...QUANT_TYPES]) {
      const plain = randomMatrix(type, 37, colsOf(type), rand)
      for (const w of [plain, packedCopy(plain)]) {
        const x = randomVector(11 * w.cols, rand)
        const batch = new Float32Array(11 * w.rows)
        linearOn(2).matmul(batch, w, x, 11)
        for (let t = 0; t < 11; t++) {
          const one = new Float32Array(w.rows)
          linearOn(1).matmul(one, w, x.subarray(t * w.cols, (t + 1) * w.cols), 1)
          // bit for bit: a ring recomputes a prefix after a failover in other batches than one device ran it
          expect(one, `${w.name}${w.packed === true ? ' packed' : ''}, token ${t} of 11`).toEqual(batch.subarray(t * w.rows, (t + 1) * w.rows))
        }
      }
    }
  })

  it('matmulUnits: each unit of columns a product of its own in float32, the units summed in float64, on every layout', () => {
    const rand = random(12)
    for (const type of [0, 8, 2, 12, 14]) {
      const unit = type === 0 ? 32 : (blockType(type)?.blockElems ?? 32)
      const cols = 3 * unit + (type === 0 ? 16 : 0) // a short last unit where blocks allow it
      const plain = randomMatrix(type, 37, cols, rand)
      const x = randomVector(5 * cols, rand)
      // unit u alone: its columns of w and x as a matrix and inputs of their own, on the layout under test
      const unitProducts = (packed: boolean): Float32Array[] => Array.from({ length: Math.ceil(cols / unit) }, (_, u) => {
        const c0 = u * unit
        const n = Math.min(unit, cols - c0)
        const bt = blockType(type)!
        const rb = plain.rowBytes
        const ub = n / bt.blockElems * bt.blockBytes
        const bytes = new Uint8Array(plain.rows * ub)
        for (let r = 0; r < plain.rows; r++) bytes.set(plain.bytes.subarray(r * rb + c0 / bt.blockElems * bt.blockBytes, r * rb + c0 / bt.blockElems * bt.blockBytes + ub), r * ub)
        const xs = new Float32Array(5 * n)
        for (let t = 0; t < 5; t++) xs.set(x.subarray(t * cols + c0, t * cols + c0 + n), t * n)
        const out = new Float32Array(5 * plain.rows)
        const part = { ...plain, cols: n, rowBytes: ub, bytes }
        linearOn(1).matmul(out, packed ? packedCopy(part) : part, xs, 5)
        return out
      })
      for (const w of [plain, packedCopy(plain)]) {
        const want = new Float64Array(5 * plain.rows)
        for (const out of unitProducts(w.packed === true)) for (let i = 0; i < want.length; i++) want[i] += out[i]
        for (const threads of [1, 2]) {
          const got = new Float64Array(5 * w.rows).fill(NaN)
          linearOn(threads).matmulUnits(got, w, x, 5, unit)
          expect(got, `${w.name}${w.packed === true ? ' packed' : ''}, ${threads} threads`).toEqual(want)
        }
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
