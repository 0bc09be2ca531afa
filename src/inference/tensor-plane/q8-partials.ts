/**
 * Partial sums sent as 8-bit blocks instead of float32, as distributed-llama does: blocks of 32
 * values, each one float32 scale (max |v| / 127) and 32 int8s, so 36 bytes per 128 (0.28×) and a
 * payload that stays a whole number of float32 words on the wire. Values past the last full block
 * are padded with zeros in their block.
 */
export const Q8_BLOCK = 32
const WORDS_PER_BLOCK = 1 + Q8_BLOCK / 4

/** The format partials travel in: as computed (exact, the default: float32 for llama2.c, float64 unit sums for GGUF) or 8-bit blocks. */
export const PARTIAL_FORMATS = ['exact', 'q8'] as const
export type PartialFormat = typeof PARTIAL_FORMATS[number]

/** Float32 words a q8 payload of `n` values takes. */
export const q8Words = (n: number): number => Math.ceil(n / Q8_BLOCK) * WORDS_PER_BLOCK

/** `v` in 8-bit blocks, as float32 words (scale, then the int8s' bytes) ready for a frame. */
export function quantizePartial (v: Float32Array): Float32Array {
  const blocks = Math.ceil(v.length / Q8_BLOCK)
  const out = new Float32Array(blocks * WORDS_PER_BLOCK)
  const bytes = new Int8Array(out.buffer)
  for (let b = 0; b < blocks; b++) {
    const from = b * Q8_BLOCK
    const to = Math.min(from + Q8_BLOCK, v.length)
    let amax = 0
    for (let i = from; i < to; i++) amax = Math.max(amax, Math.abs(v[i]))
    const scale = amax / 127
    const inv = scale === 0 ? 0 : 1 / scale
    out[b * WORDS_PER_BLOCK] = scale
    const q = (b * WORDS_PER_BLOCK + 1) * 4
    for (let i = from; i < to; i++) bytes[q + i - from] = Math.round(v[i] * inv)
  }
  return out
}

/**
 * The `n` values of a q8 payload into `out`; false if the payload is not the size `n` needs or a
 * scale is not finite (a peer's frame: untrusted).
 */
export function dequantizePartial (packed: Float32Array, n: number, out: Float32Array): boolean {
  if (packed.length !== q8Words(n) || out.length < n) return false
  const bytes = new Int8Array(packed.buffer, packed.byteOffset, packed.byteLength)
  for (let b = 0; b * Q8_BLOCK < n; b++) {
    const scale = packed[b * WORDS_PER_BLOCK]
    if (!Number.isFinite(scale)) return false
    const q = (b * WORDS_PER_BLOCK + 1) * 4
    const from = b * Q8_BLOCK
    const to = Math.min(from + Q8_BLOCK, n)
    for (let i = from; i < to; i++) out[i] = bytes[q + i - from] * scale
  }
  return true
}
