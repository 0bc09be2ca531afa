/**
 * The GGML tensor types mesh reads, one row per type, as llama.cpp's type_traits table: block
 * size in elements and bytes, and the plain dequantization of one row (the reference the fast
 * kernels are checked against). Layouts are byte for byte those of GGUF files (ggml-common.h).
 */
export interface BlockType {
  readonly id: number
  readonly name: string
  readonly blockElems: number
  readonly blockBytes: number
  /** out[0..blockElems) from the block at `at` */
  readonly dequantizeBlock: (b: DataView, at: number, out: Float32Array, o: number) => void
}

const f16 = (b: DataView, at: number): number => halfToFloat(b.getUint16(at, true))

export function halfToFloat (h: number): number {
  const s = (h & 0x8000) !== 0 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const f = h & 0x3ff
  if (e === 0) return s * f * 2 ** -24
  if (e === 31) return f === 0 ? s * Infinity : NaN
  return s * (1 + f / 1024) * 2 ** (e - 15)
}

const bf16Buf = new DataView(new ArrayBuffer(4))

/** Q4_K / Q5_K: the 6-bit scale and min of sub-block j from the 12 packed bytes at `at`. */
function scaleMinK4 (b: DataView, at: number, j: number): [number, number] {
  const q = (i: number): number => b.getUint8(at + i)
  if (j < 4) return [q(j) & 63, q(j + 4) & 63]
  return [(q(j + 4) & 0xf) | ((q(j - 4) >> 6) << 4), (q(j + 4) >> 4) | ((q(j) >> 6) << 4)]
}

const ROWS: BlockType[] = [
  { id: 0, name: 'F32', blockElems: 1, blockBytes: 4, dequantizeBlock: (b, at, out, o) => { out[o] = b.getFloat32(at, true) } },
  { id: 1, name: 'F16', blockElems: 1, blockBytes: 2, dequantizeBlock: (b, at, out, o) => { out[o] = f16(b, at) } },
  {
    id: 30, name: 'BF16', blockElems: 1, blockBytes: 2,
    dequantizeBlock: (b, at, out, o) => { bf16Buf.setUint32(0, b.getUint16(at, true) << 16, true); out[o] = bf16Buf.getFloat32(0, true) }
  },
  {
    // d (f16), 32 int8
    id: 8, name: 'Q8_0', blockElems: 32, blockBytes: 34,
    dequantizeBlock: (b, at, out, o) => { const d = f16(b, at); for (let j = 0; j < 32; j++) out[o + j] = d * b.getInt8(at + 2 + j) }
  },
  {
    // d, 16 bytes of nibbles: low nibbles are elements 0..15, high nibbles 16..31, offset by 8
    id: 2, name: 'Q4_0', blockElems: 32, blockBytes: 18,
    dequantizeBlock: (b, at, out, o) => {
      const d = f16(b, at)
      for (let j = 0; j < 16; j++) { const q = b.getUint8(at + 2 + j); out[o + j] = ((q & 0xf) - 8) * d; out[o + j + 16] = ((q >> 4) - 8) * d }
    }
  },
  {
    // d, m, nibbles: x = q·d + m
    id: 3, name: 'Q4_1', blockElems: 32, blockBytes: 20,
    dequantizeBlock: (b, at, out, o) => {
      const d = f16(b, at); const m = f16(b, at + 2)
      for (let j = 0; j < 16; j++) { const q = b.getUint8(at + 4 + j); out[o + j] = (q & 0xf) * d + m; out[o + j + 16] = (q >> 4) * d + m }
    }
  },
  {
    // d, 32 high bits (uint32), nibbles; offset by 16
    id: 6, name: 'Q5_0', blockElems: 32, blockBytes: 22,
    dequantizeBlock: (b, at, out, o) => {
      const d = f16(b, at); const qh = b.getUint32(at + 2, true)
      for (let j = 0; j < 16; j++) {
        const q = b.getUint8(at + 6 + j)
        out[o + j] = (((q & 0xf) | (((qh >>> j) & 1) << 4)) - 16) * d
        out[o + j + 16] = (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d
      }
    }
  },
  {
    id: 7, name: 'Q5_1', blockElems: 32, blockBytes: 24,
    dequantizeBlock: (b, at, out, o) => {
      const d = f16(b, at); const m = f16(b, at + 2); const qh = b.getUint32(at + 4, true)
      for (let j = 0; j < 16; j++) {
        const q = b.getUint8(at + 8 + j)
        out[o + j] = ((q & 0xf) | (((qh >>> j) & 1) << 4)) * d + m
        out[o + j + 16] = ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d + m
      }
    }
  },
  {
    // d, dmin, 12 bytes of 6-bit scales/mins for 8 sub-blocks of 32, 128 bytes of nibbles
    id: 12, name: 'Q4_K', blockElems: 256, blockBytes: 144,
    dequantizeBlock: (b, at, out, o) => {
      const d = f16(b, at); const dmin = f16(b, at + 2)
      for (let j = 0, is = 0; j < 256; j += 64, is += 2) {
        const [s1, m1] = scaleMinK4(b, at + 4, is); const [s2, m2] = scaleMinK4(b, at + 4, is + 1)
        const qs = at + 16 + j / 2
        for (let l = 0; l < 32; l++) {
          const q = b.getUint8(qs + l)
          out[o + j + l] = d * s1 * (q & 0xf) - dmin * m1
          out[o + j + 32 + l] = d * s2 * (q >> 4) - dmin * m2
        }
      }
    }
  },
  {
    // as Q4_K plus 32 bytes of fifth bits
    id: 13, name: 'Q5_K', blockElems: 256, blockBytes: 176,
    dequantizeBlock: (b, at, out, o) => {
      const d = f16(b, at); const dmin = f16(b, at + 2)
      for (let j = 0, is = 0, u = 1; j < 256; j += 64, is += 2, u <<= 2) {
        const [s1, m1] = scaleMinK4(b, at + 4, is); const [s2, m2] = scaleMinK4(b, at + 4, is + 1)
        const qs = at + 48 + j / 2
        for (let l = 0; l < 32; l++) {
          const q = b.getUint8(qs + l); const h = b.getUint8(at + 16 + l)
          out[o + j + l] = d * s1 * ((q & 0xf) + ((h & u) !== 0 ? 16 : 0)) - dmin * m1
          out[o + j + 32 + l] = d * s2 * ((q >> 4) + ((h & (u << 1)) !== 0 ? 16 : 0)) - dmin * m2
        }
      }
    }
  },
  {
    // 128 bytes low nibbles, 64 bytes of 2-bit highs, 16 int8 scales, d; offset by 32
    id: 14, name: 'Q6_K', blockElems: 256, blockBytes: 210,
    dequantizeBlock: (b, at, out, o) => {
      const d = f16(b, at + 208)
      for (let n = 0; n < 2; n++) {
        const ql = at + n * 64; const qh = at + 128 + n * 32; const sc = at + 192 + n * 8; const y = o + n * 128
        for (let l = 0; l < 32; l++) {
          const is = l >> 4
          const lo = b.getUint8(ql + l); const lo2 = b.getUint8(ql + l + 32); const h = b.getUint8(qh + l)
          out[y + l] = d * b.getInt8(sc + is) * (((lo & 0xf) | ((h & 3) << 4)) - 32)
          out[y + l + 32] = d * b.getInt8(sc + is + 2) * (((lo2 & 0xf) | (((h >> 2) & 3) << 4)) - 32)
          out[y + l + 64] = d * b.getInt8(sc + is + 4) * (((lo >> 4) | (((h >> 4) & 3) << 4)) - 32)
          out[y + l + 96] = d * b.getInt8(sc + is + 6) * (((lo2 >> 4) | (((h >> 6) & 3) << 4)) - 32)
        }
      }
    }
  }
]

const BY_ID = new Map(ROWS.map((r) => [r.id, r]))

/** The row of a ggml type id, or undefined for a type mesh cannot run. */
export const blockType = (id: number): BlockType | undefined => BY_ID.get(id)

/** Bytes of a row of n elements, or undefined when n does not divide into whole blocks. */
export function rowBytes (id: number, n: number): number | undefined {
  const t = BY_ID.get(id)
  return t === undefined || n % t.blockElems !== 0 ? undefined : (n / t.blockElems) * t.blockBytes
}

/** Dequantize one row of n elements from `bytes` (which starts at the row) into out[0..n). */
export function dequantizeRow (id: number, bytes: Uint8Array, n: number, out: Float32Array): void {
  const t = BY_ID.get(id)
  if (t === undefined) throw new RangeError(`unknown ggml type ${id}`)
  const need = rowBytes(id, n)
  if (need === undefined || bytes.byteLength < need || out.length < n) throw new RangeError(`a ${t.name} row of ${n} needs ${need ?? '?'} bytes and ${n} outputs`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, need)
  for (let k = 0; k < n / t.blockElems; k++) t.dequantizeBlock(view, k * t.blockBytes, out, k * t.blockElems)
}
