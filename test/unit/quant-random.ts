import type { Allocate } from '../../src/inference/files.js'
import type { QTensor } from '../../src/inference/llm/weights.js'
import { blockType, rowBytes } from '../../src/inference/quant/block-types.js'

// Random weights and activations for the quantized kernel tests (quant-kernels, quant-wasm).

/** A seeded generator of uniform numbers in [0, 1) (mulberry32), so a failure can be replayed. */
export function random (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const FLOAT_TYPES = new Set([0, 1, 30])
export const QUANT_TYPES = [8, 2, 3, 6, 7, 12, 13, 14]

/** Where each block keeps its f16 scales (d, and m or dmin): the bytes random data would make huge or NaN. */
const SCALES: Record<number, number[]> = { 8: [0], 2: [0], 6: [0], 3: [0, 2], 7: [0, 2], 12: [0, 2], 13: [0, 2], 14: [208] }

/**
 * Random weights of a ggml type in valid blocks: random codes, f16 scales finite and modest
 * (2^-8..2^-5); in memory from `allocate` (a wasm heap, say).
 */
export function randomMatrix (type: number, rows: number, cols: number, rand: () => number, allocate: Allocate = (n) => new Uint8Array(n)): QTensor {
  const rb = rowBytes(type, cols)
  if (rb === undefined) throw new Error(`no ${type} rows of ${cols}`)
  const bytes = allocate(rows * rb)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const half = (exp: number): number => (rand() < 0.5 ? 0x8000 : 0) | ((exp + 15) << 10) | Math.floor(rand() * 1024)
  if (type === 0) {
    for (let i = 0; i < bytes.length; i += 4) view.setFloat32(i, rand() * 2 - 1, true)
  } else if (type === 1) {
    for (let i = 0; i < bytes.length; i += 2) view.setUint16(i, half(-4 + Math.floor(rand() * 4)), true)
  } else if (type === 30) {
    const f = new DataView(new ArrayBuffer(4))
    for (let i = 0; i < bytes.length; i += 2) { f.setFloat32(0, rand() * 2 - 1, true); view.setUint16(i, f.getUint32(0, true) >>> 16, true) }
  } else {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256)
    const bt = blockType(type)
    if (bt === undefined) throw new Error(`unknown type ${type}`)
    for (let at = 0; at < bytes.length; at += bt.blockBytes) {
      for (const o of SCALES[type]) view.setUint16(at + o, half(-8 + Math.floor(rand() * 4)), true)
    }
  }
  return { name: `${blockType(type)?.name ?? type} ${rows}×${cols}`, type, rows, cols, rowBytes: rb, bytes }
}

/** Columns for a test matrix: odd for the float types (a SIMD tail), 5 blocks of 32, 2 of 256 */
export const colsOf = (type: number): number => FLOAT_TYPES.has(type) ? 77 : (blockType(type)?.blockElems ?? 0) === 32 ? 160 : 512
export const randomVector = (n: number, rand: () => number): Float32Array => Float32Array.from({ length: n }, () => rand() * 2 - 1)

/** ||a - b|| / ||b|| */
export function relativeError (a: Float32Array, b: Float32Array): number {
  let d = 0; let n = 0
  for (let i = 0; i < b.length; i++) { d += (a[i] - b[i]) ** 2; n += b[i] ** 2 }
  return Math.sqrt(d / n)
}
