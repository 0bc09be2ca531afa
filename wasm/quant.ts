// Matrix products over GGUF (ggml) weights in WebAssembly SIMD, for machines where the C kernels
// (native/quant.c) are not built. AssemblyScript, compiled by scripts/build-wasm.mjs into
// dist/wasm/quant.wasm; src/inference/llm/wasm-linear.ts calls it.
//
// Every pointer is a byte offset into the imported memory, which holds the weights (placed there
// when the file is read) and a scratch region for activations, outputs and one decoded row.
// Two paths: below 4 tokens (generating), quantized rows are dotted straight from their blocks
// with activations rounded to int16 (integer multiply-adds, scales once per sub-block); otherwise,
// and for the float types, each row is dequantized to float32 with SIMD (exactly as
// quant/block-types.ts does, one rounding per element) and dotted with each token's activations,
// four tokens per pass so one load of the decoded row serves four products. No allocation, no
// runtime: plain loops.

// ggml type ids (src/inference/quant/block-types.ts)
const F32 = 0
const F16 = 1
const Q4_0 = 2
const Q4_1 = 3
const Q5_0 = 6
const Q5_1 = 7
const Q8_0 = 8
const Q4_K = 12
const Q5_K = 13
const Q6_K = 14
const BF16 = 30

// 2^112: a half's exponent and mantissa moved into float32 position, scaled by this, is its value
// (normals and subnormals alike)
const F16_SCALE: f32 = 5.192296858534828e33

// @ts-ignore: decorator
@inline function halfToFloat (h: u32): f32 {
  const em = (h & 0x7fff) << 13
  let bits = reinterpret<u32>(reinterpret<f32>(em) * F16_SCALE)
  if ((h & 0x7c00) == 0x7c00) bits = em | 0x7f800000 // infinity, NaN
  return reinterpret<f32>(bits | ((h & 0x8000) << 16))
}

/** Four halves (the low 16 bits of each i32 lane) as float32, as halfToFloat. */
// @ts-ignore: decorator
@inline function halfToFloat4 (h: v128): v128 {
  const em = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13)
  const scaled = f32x4.mul(em, f32x4.splat(F16_SCALE))
  const special = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00))
  const mag = v128.bitselect(v128.or(em, i32x4.splat(0x7f800000)), scaled, special)
  return v128.or(mag, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16))
}

/** The f16 at p, as float32. */
// @ts-ignore: decorator
@inline function f16At (p: usize): f32 {
  return halfToFloat(<u32>load<u16>(p))
}

/** dst[0..16) = q[i]·d + m for the 16 signed bytes of q: each value rounded once, as the reference. */
// @ts-ignore: decorator
@inline function emit16 (dst: usize, q: v128, d: v128, m: v128): void {
  const lo = i16x8.extend_low_i8x16_s(q)
  const hi = i16x8.extend_high_i8x16_s(q)
  v128.store(dst, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), d), m))
  v128.store(dst, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), d), m), 16)
  v128.store(dst, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), d), m), 32)
  v128.store(dst, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), d), m), 48)
}

// @ts-ignore: decorator
@inline function lowNibbles (q: v128): v128 { return v128.and(q, i8x16.splat(0x0f)) }
// @ts-ignore: decorator
@inline function highNibbles (q: v128): v128 { return i8x16.shr_u(q, 4) }

/**
 * Q5_0 / Q5_1: the fifth bits of 16 elements as 0 or 16 per byte, from the 32-bit field qh
 * (element j's bit is bit j): `first` is the bit of the first of the 16.
 */
// @ts-ignore: decorator
@inline function fifthBits (qh: u32, first: u32): v128 {
  const h = i32x4.splat(<i32>(qh >> first))
  const bytes = i8x16.swizzle(h, i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1))
  const bit = v128.and(bytes, i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128))
  return v128.and(i8x16.ne(bit, i8x16.splat(0)), i8x16.splat(16))
}

/** Q4_K / Q5_K: the 6-bit scale of sub-block j from the 12 packed bytes at p. */
// @ts-ignore: decorator
@inline function scaleK (p: usize, j: i32): u32 {
  return j < 4 ? <u32>load<u8>(p + j) & 63 : (<u32>load<u8>(p + j + 4) & 0xf) | ((<u32>load<u8>(p + j - 4) >> 6) << 4)
}

/** Q4_K / Q5_K: the 6-bit min of sub-block j. */
// @ts-ignore: decorator
@inline function minK (p: usize, j: i32): u32 {
  return j < 4 ? <u32>load<u8>(p + j + 4) & 63 : (<u32>load<u8>(p + j + 4) >> 4) | ((<u32>load<u8>(p + j) >> 6) << 4)
}

function rowF16 (src: usize, n: i32, dst: usize): void {
  let j = 0
  for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), halfToFloat4(v128.load16x4_u(src + (<usize>j << 1))))
  for (; j < n; j++) store<f32>(dst + (<usize>j << 2), f16At(src + (<usize>j << 1)))
}

function rowBF16 (src: usize, n: i32, dst: usize): void {
  let j = 0
  for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), i32x4.shl(v128.load16x4_u(src + (<usize>j << 1)), 16))
  for (; j < n; j++) store<u32>(dst + (<usize>j << 2), <u32>load<u16>(src + (<usize>j << 1)) << 16)
}

function rowQ8_0 (src: usize, nb: i32, dst: usize): void {
  const zero = f32x4.splat(0)
  for (let b = 0; b < nb; b++, src += 34, dst += 128) {
    const d = f32x4.splat(f16At(src))
    emit16(dst, v128.load(src, 2), d, zero)
    emit16(dst + 64, v128.load(src, 18), d, zero)
  }
}

function rowQ4_0 (src: usize, nb: i32, dst: usize): void {
  const zero = f32x4.splat(0)
  const eight = i8x16.splat(8)
  for (let b = 0; b < nb; b++, src += 18, dst += 128) {
    const d = f32x4.splat(f16At(src))
    const q = v128.load(src, 2)
    emit16(dst, i8x16.sub(lowNibbles(q), eight), d, zero)
    emit16(dst + 64, i8x16.sub(highNibbles(q), eight), d, zero)
  }
}

function rowQ4_1 (src: usize, nb: i32, dst: usize): void {
  for (let b = 0; b < nb; b++, src += 20, dst += 128) {
    const d = f32x4.splat(f16At(src))
    const m = f32x4.splat(f16At(src + 2))
    const q = v128.load(src, 4)
    emit16(dst, lowNibbles(q), d, m)
    emit16(dst + 64, highNibbles(q), d, m)
  }
}

function rowQ5_0 (src: usize, nb: i32, dst: usize): void {
  const zero = f32x4.splat(0)
  const sixteen = i8x16.splat(16)
  for (let b = 0; b < nb; b++, src += 22, dst += 128) {
    const d = f32x4.splat(f16At(src))
    const qh = load<u32>(src, 2)
    const q = v128.load(src, 6)
    emit16(dst, i8x16.sub(v128.or(lowNibbles(q), fifthBits(qh, 0)), sixteen), d, zero)
    emit16(dst + 64, i8x16.sub(v128.or(highNibbles(q), fifthBits(qh, 16)), sixteen), d, zero)
  }
}

function rowQ5_1 (src: usize, nb: i32, dst: usize): void {
  for (let b = 0; b < nb; b++, src += 24, dst += 128) {
    const d = f32x4.splat(f16At(src))
    const m = f32x4.splat(f16At(src + 2))
    const qh = load<u32>(src, 4)
    const q = v128.load(src, 8)
    emit16(dst, v128.or(lowNibbles(q), fifthBits(qh, 0)), d, m)
    emit16(dst + 64, v128.or(highNibbles(q), fifthBits(qh, 16)), d, m)
  }
}

// Q4_K: d, dmin, 12 bytes of scales and mins, 128 bytes of nibbles; 64 elements per step, the low
// nibbles of 32 bytes then their high nibbles, each half with its own scale and min. Q5_K: the
// same with 32 bytes of fifth bits before the nibbles (bit 2j of byte l for the low half of step j,
// 2j+1 for the high). Inlined per type, so `five` is a constant and its branches fold away.
@inline function rowQ45_K (src: usize, nb: i32, dst: usize, five: bool): void {
  const sixteen = i8x16.splat(16)
  const blockBytes: usize = five ? 176 : 144
  for (let b = 0; b < nb; b++, src += blockBytes) {
    const d = f16At(src)
    const dmin = f16At(src + 2)
    const sc = src + 4
    const h0 = five ? v128.load(src, 16) : i8x16.splat(0)
    const h1 = five ? v128.load(src, 32) : i8x16.splat(0)
    for (let j = 0; j < 4; j++, dst += 256) {
      const d1 = f32x4.splat(d * <f32>scaleK(sc, 2 * j))
      const m1 = f32x4.splat(-dmin * <f32>minK(sc, 2 * j))
      const d2 = f32x4.splat(d * <f32>scaleK(sc, 2 * j + 1))
      const m2 = f32x4.splat(-dmin * <f32>minK(sc, 2 * j + 1))
      const qs = src + (five ? 48 : 16) + 32 * <usize>j
      const q0 = v128.load(qs)
      const q1 = v128.load(qs, 16)
      let a0 = lowNibbles(q0)
      let a1 = lowNibbles(q1)
      let b0 = highNibbles(q0)
      let b1 = highNibbles(q1)
      if (five) {
        const lo = 2 * j
        a0 = v128.or(a0, v128.and(i8x16.shl(i8x16.shr_u(h0, lo), 4), sixteen))
        a1 = v128.or(a1, v128.and(i8x16.shl(i8x16.shr_u(h1, lo), 4), sixteen))
        b0 = v128.or(b0, v128.and(i8x16.shl(i8x16.shr_u(h0, lo + 1), 4), sixteen))
        b1 = v128.or(b1, v128.and(i8x16.shl(i8x16.shr_u(h1, lo + 1), 4), sixteen))
      }
      emit16(dst, a0, d1, m1)
      emit16(dst + 64, a1, d1, m1)
      emit16(dst + 128, b0, d2, m2)
      emit16(dst + 192, b1, d2, m2)
    }
  }
}

// Q6_K: 128 bytes of low nibbles, 64 of 2-bit highs, 16 int8 scales, d; two halves of 128
// elements, each as four runs of 32 (one scale per 16) built from the same 32 low and high bytes
function rowQ6_K (src: usize, nb: i32, dst: usize): void {
  const zero = f32x4.splat(0)
  const three = i8x16.splat(3)
  const bias = i8x16.splat(32)
  for (let b = 0; b < nb; b++, src += 210) {
    const d = f16At(src + 208)
    for (let n: usize = 0; n < 2; n++) {
      const ql = src + 64 * n
      const qh = src + 128 + 32 * n
      const sc = src + 192 + 8 * n
      const y = dst + 512 * n
      for (let half: usize = 0; half < 2; half++) {
        const l = 16 * half
        const a = v128.load(ql + l)
        const c = v128.load(ql + l, 32)
        const h = v128.load(qh + l)
        const q1 = i8x16.sub(v128.or(lowNibbles(a), i8x16.shl(v128.and(h, three), 4)), bias)
        const q2 = i8x16.sub(v128.or(lowNibbles(c), i8x16.shl(v128.and(i8x16.shr_u(h, 2), three), 4)), bias)
        const q3 = i8x16.sub(v128.or(highNibbles(a), i8x16.shl(v128.and(i8x16.shr_u(h, 4), three), 4)), bias)
        const q4 = i8x16.sub(v128.or(highNibbles(c), i8x16.shl(i8x16.shr_u(h, 6), 4)), bias)
        emit16(y + (l << 2), q1, f32x4.splat(d * <f32>load<i8>(sc + half)), zero)
        emit16(y + ((l + 32) << 2), q2, f32x4.splat(d * <f32>load<i8>(sc + half + 2)), zero)
        emit16(y + ((l + 64) << 2), q3, f32x4.splat(d * <f32>load<i8>(sc + half + 4)), zero)
        emit16(y + ((l + 96) << 2), q4, f32x4.splat(d * <f32>load<i8>(sc + half + 6)), zero)
      }
    }
    dst += 1024
  }
}

/** Row of n elements of `type` at src as float32 at dst; false for a type this module does not know. */
function decodeRow (type: i32, src: usize, n: i32, dst: usize): bool {
  switch (type) {
    case F16: rowF16(src, n, dst); break
    case BF16: rowBF16(src, n, dst); break
    case Q8_0: rowQ8_0(src, n >> 5, dst); break
    case Q4_0: rowQ4_0(src, n >> 5, dst); break
    case Q4_1: rowQ4_1(src, n >> 5, dst); break
    case Q5_0: rowQ5_0(src, n >> 5, dst); break
    case Q5_1: rowQ5_1(src, n >> 5, dst); break
    case Q4_K: rowQ45_K(src, n >> 8, dst, false); break
    case Q5_K: rowQ45_K(src, n >> 8, dst, true); break
    case Q6_K: rowQ6_K(src, n >> 8, dst); break
    default: return false
  }
  return true
}

// @ts-ignore: decorator
@inline function lanes (a: v128): f32 {
  return (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3))
}

/**
 * out[t·outStride] = Σ_j row[j]·x_t[j] for t < nTokens (x_t: n floats at x + t·n·4): four tokens
 * at a time share each load of the row, a lone token runs four accumulators.
 */
function dotTokens (row: usize, x: usize, n: i32, nTokens: i32, out: usize, outStride: i32): void {
  const xs = <usize>n << 2
  const os = <usize>outStride << 2
  const n4 = n & ~3
  let t = 0
  for (; t + 4 <= nTokens; t += 4) {
    const x0 = x + <usize>t * xs
    const x1 = x0 + xs
    const x2 = x1 + xs
    const x3 = x2 + xs
    let a0 = f32x4.splat(0)
    let a1 = f32x4.splat(0)
    let a2 = f32x4.splat(0)
    let a3 = f32x4.splat(0)
    for (let j: usize = 0; j < <usize>n4 << 2; j += 16) {
      const w = v128.load(row + j)
      a0 = f32x4.add(a0, f32x4.mul(w, v128.load(x0 + j)))
      a1 = f32x4.add(a1, f32x4.mul(w, v128.load(x1 + j)))
      a2 = f32x4.add(a2, f32x4.mul(w, v128.load(x2 + j)))
      a3 = f32x4.add(a3, f32x4.mul(w, v128.load(x3 + j)))
    }
    let s0 = lanes(a0)
    let s1 = lanes(a1)
    let s2 = lanes(a2)
    let s3 = lanes(a3)
    for (let j = n4; j < n; j++) {
      const at = <usize>j << 2
      const w = load<f32>(row + at)
      s0 += w * load<f32>(x0 + at)
      s1 += w * load<f32>(x1 + at)
      s2 += w * load<f32>(x2 + at)
      s3 += w * load<f32>(x3 + at)
    }
    const o = out + <usize>t * os
    store<f32>(o, s0)
    store<f32>(o + os, s1)
    store<f32>(o + 2 * os, s2)
    store<f32>(o + 3 * os, s3)
  }
  const n16 = n & ~15
  for (; t < nTokens; t++) {
    const xt = x + <usize>t * xs
    let a0 = f32x4.splat(0)
    let a1 = f32x4.splat(0)
    let a2 = f32x4.splat(0)
    let a3 = f32x4.splat(0)
    let j: usize = 0
    for (; j < <usize>n16 << 2; j += 64) {
      a0 = f32x4.add(a0, f32x4.mul(v128.load(row + j), v128.load(xt + j)))
      a1 = f32x4.add(a1, f32x4.mul(v128.load(row + j, 16), v128.load(xt + j, 16)))
      a2 = f32x4.add(a2, f32x4.mul(v128.load(row + j, 32), v128.load(xt + j, 32)))
      a3 = f32x4.add(a3, f32x4.mul(v128.load(row + j, 48), v128.load(xt + j, 48)))
    }
    for (; j < <usize>n4 << 2; j += 16) a0 = f32x4.add(a0, f32x4.mul(v128.load(row + j), v128.load(xt + j)))
    let s = lanes(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)))
    for (; j < <usize>n << 2; j += 4) s += load<f32>(row + j) * load<f32>(xt + j)
    store<f32>(out + <usize>t * os, s)
  }
}

// Below 4 tokens (generating): each row's dot product with a token straight from its blocks. The
// token's x is first rounded to int16 per group of 32 (scale max|x|/32767: a relative error near
// 1e-5, where llama.cpp's 8 bits lose 0.4 %), so the codes meet it in integer multiply-adds
// (i32x4.dot_i16x8_s, no conversion per element). A block's values are q·d + m, so
// Σ (q·d + m)·x = d·Σ q·x + m·Σ x: scales apply once per sub-block, with the sums of x per 32
// computed once per call.

/** Σ q[i]·xi[i] over 16 signed bytes and 16 int16 at xi, as four i32 lanes (no overflow: |q| ≤ 128). */
// @ts-ignore: decorator
@inline function idot16 (q: v128, xi: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q), v128.load(xi)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q), v128.load(xi, 16)))
}

// @ts-ignore: decorator
@inline function idot32 (q0: v128, q1: v128, xi: usize): v128 {
  return i32x4.add(idot16(q0, xi), idot16(q1, xi + 32))
}

/** acc + Σ lanes of the integer sum s, times `scale` */
// @ts-ignore: decorator
@inline function scaled (acc: v128, s: v128, scale: f32): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(scale)))
}

// Each dot below takes the row's blocks at src, the token's int16 values xi, their scale per 32
// (xs) and, for the types with mins, the sums of x per 32 (xSums).

function dotQ8_0 (src: usize, nb: i32, xi: usize, xs: usize): f32 {
  let acc = f32x4.splat(0)
  for (let b = 0; b < nb; b++, src += 34, xi += 64, xs += 4) {
    acc = scaled(acc, idot32(v128.load(src, 2), v128.load(src, 18), xi), f16At(src) * load<f32>(xs))
  }
  return lanes(acc)
}

function dotQ4_0 (src: usize, nb: i32, xi: usize, xs: usize): f32 {
  const eight = i8x16.splat(8)
  let acc = f32x4.splat(0)
  for (let b = 0; b < nb; b++, src += 18, xi += 64, xs += 4) {
    const q = v128.load(src, 2)
    acc = scaled(acc, idot32(i8x16.sub(lowNibbles(q), eight), i8x16.sub(highNibbles(q), eight), xi), f16At(src) * load<f32>(xs))
  }
  return lanes(acc)
}

function dotQ4_1 (src: usize, nb: i32, xi: usize, xs: usize, xSums: usize): f32 {
  let acc = f32x4.splat(0)
  let mins: f32 = 0
  for (let b = 0; b < nb; b++, src += 20, xi += 64, xs += 4, xSums += 4) {
    const q = v128.load(src, 4)
    acc = scaled(acc, idot32(lowNibbles(q), highNibbles(q), xi), f16At(src) * load<f32>(xs))
    mins += f16At(src + 2) * load<f32>(xSums)
  }
  return lanes(acc) + mins
}

function dotQ5_0 (src: usize, nb: i32, xi: usize, xs: usize): f32 {
  const sixteen = i8x16.splat(16)
  let acc = f32x4.splat(0)
  for (let b = 0; b < nb; b++, src += 22, xi += 64, xs += 4) {
    const qh = load<u32>(src, 2)
    const q = v128.load(src, 6)
    const q0 = i8x16.sub(v128.or(lowNibbles(q), fifthBits(qh, 0)), sixteen)
    const q1 = i8x16.sub(v128.or(highNibbles(q), fifthBits(qh, 16)), sixteen)
    acc = scaled(acc, idot32(q0, q1, xi), f16At(src) * load<f32>(xs))
  }
  return lanes(acc)
}

function dotQ5_1 (src: usize, nb: i32, xi: usize, xs: usize, xSums: usize): f32 {
  let acc = f32x4.splat(0)
  let mins: f32 = 0
  for (let b = 0; b < nb; b++, src += 24, xi += 64, xs += 4, xSums += 4) {
    const qh = load<u32>(src, 4)
    const q = v128.load(src, 8)
    acc = scaled(acc, idot32(v128.or(lowNibbles(q), fifthBits(qh, 0)), v128.or(highNibbles(q), fifthBits(qh, 16)), xi), f16At(src) * load<f32>(xs))
    mins += f16At(src + 2) * load<f32>(xSums)
  }
  return lanes(acc) + mins
}

function dotQ4_K (src: usize, nb: i32, xi: usize, xs: usize, xSums: usize): f32 {
  let acc = f32x4.splat(0)
  let mins: f32 = 0
  for (let b = 0; b < nb; b++, src += 144) {
    const d = f16At(src)
    const sc = src + 4
    let m: f32 = 0
    for (let j = 0; j < 4; j++, xi += 128, xs += 8, xSums += 8) {
      const qs = src + 16 + 32 * <usize>j
      const q0 = v128.load(qs)
      const q1 = v128.load(qs, 16)
      acc = scaled(acc, idot32(lowNibbles(q0), lowNibbles(q1), xi), d * <f32>scaleK(sc, 2 * j) * load<f32>(xs))
      acc = scaled(acc, idot32(highNibbles(q0), highNibbles(q1), xi + 64), d * <f32>scaleK(sc, 2 * j + 1) * load<f32>(xs, 4))
      m += <f32>minK(sc, 2 * j) * load<f32>(xSums) + <f32>minK(sc, 2 * j + 1) * load<f32>(xSums, 4)
    }
    mins += f16At(src + 2) * m
  }
  return lanes(acc) - mins
}

function dotQ5_K (src: usize, nb: i32, xi: usize, xs: usize, xSums: usize): f32 {
  const sixteen = i8x16.splat(16)
  let acc = f32x4.splat(0)
  let mins: f32 = 0
  for (let b = 0; b < nb; b++, src += 176) {
    const d = f16At(src)
    const sc = src + 4
    const h0 = v128.load(src, 16)
    const h1 = v128.load(src, 32)
    let m: f32 = 0
    for (let j = 0; j < 4; j++, xi += 128, xs += 8, xSums += 8) {
      const qs = src + 48 + 32 * <usize>j
      const q0 = v128.load(qs)
      const q1 = v128.load(qs, 16)
      const lo = 2 * j
      const a0 = v128.or(lowNibbles(q0), v128.and(i8x16.shl(i8x16.shr_u(h0, lo), 4), sixteen))
      const a1 = v128.or(lowNibbles(q1), v128.and(i8x16.shl(i8x16.shr_u(h1, lo), 4), sixteen))
      const b0 = v128.or(highNibbles(q0), v128.and(i8x16.shl(i8x16.shr_u(h0, lo + 1), 4), sixteen))
      const b1 = v128.or(highNibbles(q1), v128.and(i8x16.shl(i8x16.shr_u(h1, lo + 1), 4), sixteen))
      acc = scaled(acc, idot32(a0, a1, xi), d * <f32>scaleK(sc, lo) * load<f32>(xs))
      acc = scaled(acc, idot32(b0, b1, xi + 64), d * <f32>scaleK(sc, lo + 1) * load<f32>(xs, 4))
      m += <f32>minK(sc, lo) * load<f32>(xSums) + <f32>minK(sc, lo + 1) * load<f32>(xSums, 4)
    }
    mins += f16At(src + 2) * m
  }
  return lanes(acc) - mins
}

// Q6_K: a scale per 16 elements, applied in integers (|sum·scale| < 2^31), so each group of 32 of
// x converts once
function dotQ6_K (src: usize, nb: i32, xi: usize, xs: usize): f32 {
  let acc = f32x4.splat(0)
  for (let b = 0; b < nb; b++, src += 210) {
    const d = f16At(src + 208)
    for (let n: usize = 0; n < 2; n++, xi += 256, xs += 16) {
      const ql = src + 64 * n
      const qh = src + 128 + 32 * n
      const sc = src + 192 + 8 * n
      const a0 = v128.load(ql)
      const a1 = v128.load(ql, 16)
      const c0 = v128.load(ql, 32)
      const c1 = v128.load(ql, 48)
      const h0 = v128.load(qh)
      const h1 = v128.load(qh, 16)
      // runs of 32: elements 0..31 from the low nibbles of a and bits 0-1 of h, 32..63 from c and
      // bits 2-3, 64..95 from a's high nibbles and bits 4-5, 96..127 from c's and bits 6-7
      acc = q6Run(acc, lowNibbles(a0), lowNibbles(a1), h0, h1, 0, sc, xi, xs, d)
      acc = q6Run(acc, lowNibbles(c0), lowNibbles(c1), h0, h1, 1, sc, xi, xs, d)
      acc = q6Run(acc, highNibbles(a0), highNibbles(a1), h0, h1, 2, sc, xi, xs, d)
      acc = q6Run(acc, highNibbles(c0), highNibbles(c1), h0, h1, 3, sc, xi, xs, d)
    }
  }
  return lanes(acc)
}

/** Q6_K: run k (32 elements) of a half block, its low 4 bits in lo0/lo1, high 2 at bit 2k of h0/h1. */
// @ts-ignore: decorator
@inline function q6Run (acc: v128, lo0: v128, lo1: v128, h0: v128, h1: v128, k: i32, sc: usize, xi: usize, xs: usize, d: f32): v128 {
  const three = i8x16.splat(3)
  const bias = i8x16.splat(32)
  const q0 = i8x16.sub(v128.or(lo0, i8x16.shl(v128.and(i8x16.shr_u(h0, 2 * k), three), 4)), bias)
  const q1 = i8x16.sub(v128.or(lo1, i8x16.shl(v128.and(i8x16.shr_u(h1, 2 * k), three), 4)), bias)
  const x = xi + 64 * <usize>k
  const s = i32x4.add(i32x4.mul(idot16(q0, x), i32x4.splat(<i32>load<i8>(sc + 2 * k))), i32x4.mul(idot16(q1, x + 32), i32x4.splat(<i32>load<i8>(sc + 2 * k + 1))))
  return scaled(acc, s, d * load<f32>(xs + 4 * <usize>k))
}

/** The fused dot of one row with one token, for the types hasFusedDot names. */
function dotRow (type: i32, src: usize, n: i32, xi: usize, xs: usize, xSums: usize): f32 {
  switch (type) {
    case Q8_0: return dotQ8_0(src, n >> 5, xi, xs)
    case Q4_0: return dotQ4_0(src, n >> 5, xi, xs)
    case Q4_1: return dotQ4_1(src, n >> 5, xi, xs, xSums)
    case Q5_0: return dotQ5_0(src, n >> 5, xi, xs)
    case Q5_1: return dotQ5_1(src, n >> 5, xi, xs, xSums)
    case Q4_K: return dotQ4_K(src, n >> 8, xi, xs, xSums)
    case Q5_K: return dotQ5_K(src, n >> 8, xi, xs, xSums)
    case Q6_K: return dotQ6_K(src, n >> 8, xi, xs)
    default: return NaN
  }
}

function hasFusedDot (type: i32): bool {
  return type == Q8_0 || type == Q4_0 || type == Q4_1 || type == Q5_0 || type == Q5_1 || type == Q4_K || type == Q5_K || type == Q6_K
}

/**
 * Each group of 32 of x (nTokens·n/32 of them) as int16 at xi (round(x/s), s = max|x|/32767),
 * s at xs, and the group's float sum at xSums.
 */
function quantize16 (x: usize, n: i32, nTokens: i32, xi: usize, xs: usize, xSums: usize): void {
  const groups = nTokens * (n >> 5)
  for (let g = 0; g < groups; g++, x += 128, xi += 64, xs += 4, xSums += 4) {
    let amax = f32x4.splat(0)
    let sum = f32x4.splat(0)
    for (let k: usize = 0; k < 128; k += 16) {
      const v = v128.load(x + k)
      amax = f32x4.max(amax, f32x4.abs(v))
      sum = f32x4.add(sum, v)
    }
    const m = max(max(f32x4.extract_lane(amax, 0), f32x4.extract_lane(amax, 1)), max(f32x4.extract_lane(amax, 2), f32x4.extract_lane(amax, 3)))
    const s: f32 = m / 32767
    const inv = f32x4.splat(m > 0 ? 32767 / m : 0)
    for (let k: usize = 0; k < 128; k += 32) {
      const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + k), inv)))
      const b = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + k, 16), inv)))
      v128.store(xi + (k >> 1), i16x8.narrow_i32x4_s(a, b))
    }
    store<f32>(xs, s)
    store<f32>(xSums, lanes(sum))
  }
}

/**
 * out[t·rows + r] = Σ_j W[r, j]·x[t·cols + j] for r < rows, t < nTokens: W's rows of `rowBytes`
 * at w in ggml `type`, x float32, rowBuf room for cols floats (or, below 4 tokens, for each
 * token's x as int16, scales and sums: 2.25·cols bytes a token). Quantized types below 4 tokens:
 * the fused integer dot of each row; otherwise each row is decoded to float32 once and dotted
 * with every token (decoding is then the smaller cost). Returns 0, or
 * -1 for an unknown type (the caller checks shapes and bounds).
 */
export function matmul (type: i32, w: usize, rowBytes: i32, rows: i32, cols: i32, x: usize, nTokens: i32, out: usize, rowBuf: usize): i32 {
  if (nTokens < 4 && hasFusedDot(type)) {
    // in rowBuf: the int16 x (2·cols bytes a token), then the scales and sums per 32 (cols/8 bytes each)
    const xi = rowBuf
    const xs = xi + (<usize>nTokens * <usize>cols << 1)
    const xSums = xs + (<usize>nTokens * <usize>cols >> 3)
    quantize16(x, cols, nTokens, xi, xs, xSums)
    const groupBytes = <usize>cols >> 3
    for (let r = 0; r < rows; r++) {
      const src = w + <usize>r * <usize>rowBytes
      for (let t: usize = 0; t < <usize>nTokens; t++) {
        const o = out + ((t * <usize>rows + <usize>r) << 2)
        store<f32>(o, dotRow(type, src, cols, xi + t * (<usize>cols << 1), xs + t * groupBytes, xSums + t * groupBytes))
      }
    }
    return 0
  }
  for (let r = 0; r < rows; r++) {
    const src = w + <usize>r * <usize>rowBytes
    let row = src
    if (type != F32) {
      if (!decodeRow(type, src, cols, rowBuf)) return -1
      row = rowBuf
    }
    dotTokens(row, x, cols, nTokens, out + (<usize>r << 2), rows)
  }
  return 0
}
