/*
 * Matrix products over weights kept in their GGUF types, as llama.cpp's CPU backend computes them:
 * each token's activations are quantized to 8 bits once per call (q8_0 blocks of 32 for Q8_0; q8_1,
 * which adds the block's sum, for Q4_0, Q5_0, Q4_1 and Q5_1, whose offsets multiply it; q8_K
 * blocks of 256 with sums per 16 for the K-quants), and a weight row is dotted with them in
 * integers, one float multiply per block. Layouts are those of src/inference/quant/block-types.ts
 * (ggml-common.h). F32, F16 and BF16 weights are dotted with the float32 activations as they are.
 *
 * Speed: one token (generation) is bound by memory bandwidth, so the integer inner loops only
 * have to keep up with the weights streaming in. Many tokens (a prompt) are bound by arithmetic, so
 * every weight block is decoded once for TILE tokens, and a thread takes ROW_CHUNK rows through all
 * tokens while those rows sit in L1: weights come from memory once per call. Q8_0, Q4_0, Q4_K and
 * Q6_K matrices can be repacked at load (qrepack) into groups of 16 interleaved rows, whose dot
 * takes 16 rows × 8 tokens with the accumulators in registers (packed groups, below): about twice
 * the speed on a prompt.
 *
 * SIMD: AVX2 (with FMA and F16C), using AVX-VNNI / AVX512-VNNI's dpbusd for the byte dot products
 * when the compiler targets them (the addon is built with -march=native); plain C otherwise. The
 * packed layouts need AVX-512 (F, BW, VNNI): elsewhere qrepack packs nothing.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include <omp.h>
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define QUANT_AVX2 1
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define QUANT_AVX512 1 /* the packed layouts' kernels (qrepack repacks nothing without them) */
#endif
#endif

/*
 * The addon is built with -ffast-math (kernels.c's float loops vectorise by it), but here a token's
 * result must not depend on how many tokens share a call: a ring recomputes a prefix after a
 * failover in other batches than one device ran it. So no reassociation or contraction of float
 * sums in this file; the kernels are explicit intrinsics and lose nothing by it.
 */
#if defined(__clang__)
#pragma clang fp reassociate(off) contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("no-associative-math", "fp-contract=off")
#endif

#define TILE 4        /* tokens that share each decoded weight block (ROW_DOT's switch goes up to it) */
#define ROW_CHUNK 16  /* rows a thread runs through all tokens at once; threads' shares are multiples of it */
#define MAX_GROUP 16  /* matrices in one qmatmulGroup call */
#define PACK_ROWS 16  /* rows interleaved in a packed group: one int32 lane of a 512-bit vector each */
#define PREFETCH_BYTES 4608 /* how far ahead packed kernels prefetch weights: about 16 blocks of Q4_0, 2 of Q4_K */
#define PACK_TILE 8   /* tokens a packed group's kernel takes at once (PACKED_DOT's switch goes up to it) */
#define PACKED 0x100  /* added to a ggml type id: the matrix was repacked (qrepack) */
_Static_assert(ROW_CHUNK % PACK_ROWS == 0, "threads' shares must cut between packed groups");

/* ggml type ids and block sizes in bytes */
enum { F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30 };
enum { BYTES_Q4_0 = 18, BYTES_Q4_1 = 20, BYTES_Q5_0 = 22, BYTES_Q5_1 = 24, BYTES_Q8_0 = 34, BYTES_Q4_K = 144, BYTES_Q5_K = 176, BYTES_Q6_K = 210 };

#define ALWAYS_INLINE static inline __attribute__((always_inline))

static inline float f16_to_f32(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
#ifdef QUANT_AVX2
  return _cvtsh_ss(h);
#else
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
  if (e == 0) { float f = m * (1.0f / 16777216.0f); return sign ? -f : f; } /* zero and subnormals: m·2^-24 */
  bits = sign | (e == 31 ? 0x7f800000u | (m << 13) : ((e + 112) << 23) | (m << 13));
  float f;
  memcpy(&f, &bits, 4);
  return f;
#endif
}

static inline float bf16_to_f32(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* ---- activations ---- */

typedef struct { float d; int8_t qs[32]; } block_q8_0;
/*
 * A q8_1 row of n is kept as arrays rather than blocks: n codes, then n/32 scales d, then n/32 sums
 * s = d·Σqs, so that two blocks' codes are one 512-bit load.
 */
typedef struct { const int8_t *qs; const float *d, *s; } q8_1_row;
#define Q8_1_BLOCK_BYTES (32 + 2 * sizeof(float))

static inline q8_1_row q8_1_at(const uint8_t *p, int n) {
  const float *d = (const float *)(p + n);
  return (q8_1_row){ (const int8_t *)p, d, d + n / 32 };
}
typedef struct { float d; int8_t qs[256]; int16_t bsums[16], sums32[8]; } block_q8_K; /* Σqs per 16 and per 32 */

/* qs = round(x/d) for d = max|x|/127 (so codes stay within ±127, which maddubs needs); returns d */
static float quantize_int8(const float *x, int n, int8_t *qs) {
  float amax = 0.0f;
  for (int j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
  const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < n; j++) qs[j] = (int8_t)lrintf(x[j] * id);
  return d;
}

static inline int sum_int8(const int8_t *qs, int n) {
  int s = 0;
  for (int j = 0; j < n; j++) s += qs[j];
  return s;
}

static void quantize_q8_0(const float *x, int n, uint8_t *out) {
  block_q8_0 *y = (block_q8_0 *)out;
  for (int b = 0; b < n / 32; b++) y[b].d = quantize_int8(x + 32 * b, 32, y[b].qs);
}

static void quantize_q8_1(const float *x, int n, uint8_t *out) {
  int8_t *qs = (int8_t *)out;
  float *d = (float *)(out + n), *s = d + n / 32;
  for (int b = 0; b < n / 32; b++) {
    d[b] = quantize_int8(x + 32 * b, 32, qs + 32 * b);
    s[b] = d[b] * sum_int8(qs + 32 * b, 32);
  }
}

static void quantize_q8_K(const float *x, int n, uint8_t *out) {
  block_q8_K *y = (block_q8_K *)out;
  for (int b = 0; b < n / 256; b++) {
    y[b].d = quantize_int8(x + 256 * b, 256, y[b].qs);
    for (int g = 0; g < 16; g++) y[b].bsums[g] = (int16_t)sum_int8(y[b].qs + 16 * g, 16);
    for (int g = 0; g < 8; g++) y[b].sums32[g] = (int16_t)(y[b].bsums[2 * g] + y[b].bsums[2 * g + 1]);
  }
}

enum { ACT_F32, ACT_Q8_0, ACT_Q8_1, ACT_Q8_K, N_ACTS };

static const struct {
  int block_elems;
  size_t block_bytes;
  void (*quantize)(const float *x, int n, uint8_t *out); /* NULL: the float32 input is used as it is */
} ACTS[N_ACTS] = {
  [ACT_F32] = { 1, sizeof(float), NULL },
  [ACT_Q8_0] = { 32, sizeof(block_q8_0), quantize_q8_0 },
  [ACT_Q8_1] = { 32, Q8_1_BLOCK_BYTES, quantize_q8_1 },
  [ACT_Q8_K] = { 256, sizeof(block_q8_K), quantize_q8_K },
};

/* ---- SIMD pieces shared by the types ---- */

#ifdef QUANT_AVX2
static inline float hsum128(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline float hsum256(__m256 v) { return hsum128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))); }

static inline __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* Σ u·s over each 4 bytes, 8 int32, for u unsigned and s signed bytes */
static inline __m256i dot_us8(__m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#elif defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* acc + Σ over each pair of int16 of sc·p, 8 int32 (VNNI fuses the multiply-add and the add) */
static inline __m256i madd_acc16(__m256i acc, __m256i sc, __m256i p) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpwssd_epi32(acc, sc, p);
#elif defined(__AVXVNNI__)
  return _mm256_dpwssd_avx_epi32(acc, sc, p);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(sc, p));
#endif
}

/* 32 nibbles of 16 bytes: low nibbles are elements 0..15, high nibbles 16..31 (the 32-element types' order) */
static inline __m256i nibbles32(const uint8_t *p) {
  const __m128i b = _mm_loadu_si128((const __m128i *)p);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0f));
}

/* 0x10 in byte j where bit j of the 32 bits at p is set: Q5_0/Q5_1's fifth bits, in place */
static inline __m256i fifth_bits32(const uint8_t *p) {
  uint32_t bits;
  memcpy(&bits, p, 4);
  const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const __m256i v = _mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread), _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_and_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
}

/* int16 lanes all holding int16 element i of v (within each 128-bit half) */
static inline __m256i broadcast16(__m256i v, int i) { return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)((2 * i + 1) << 8 | 2 * i))); }
#endif

/* The codes 0..31 of a 32-element block: nibbles qs, plus 16 where the bit of qh is set (Q5 types; qh NULL for Q4) */
static inline void codes32(const uint8_t *qs, const uint8_t *qh, uint8_t *q) {
  uint32_t h = 0;
  if (qh) memcpy(&h, qh, 4);
  for (int j = 0; j < 16; j++) {
    q[j] = (qs[j] & 15) | ((h >> j) & 1) << 4;
    q[j + 16] = (qs[j] >> 4) | ((h >> (j + 16)) & 1) << 4;
  }
}

/* ---- row dots: one weight row (or one packed group of PACK_ROWS rows) with nt tokens' activations ---- */

/*
 * out[t·os] = W row (n elements at w) · activation row t (at a + t·as bytes), t < nt ≤ TILE; for a
 * packed type, out[t·os + r] for the group's rows r < PACK_ROWS (w: the group), t < nt ≤ PACK_TILE.
 */
typedef void (*row_dot_fn)(int n, const uint8_t *w, const uint8_t *a, size_t as, int nt, float *out, size_t os);

/*
 * A row_dot_fn from a body written for a constant nt (and a constant type), so the body's per-token
 * loops unroll and its accumulators stay in registers: ROW_DOT up to TILE tokens, PACKED_DOT up to
 * PACK_TILE.
 */
#define AT_NT(k, body, ...) case k: body(n, w, a, as, k, out, os, ##__VA_ARGS__); break;
#define ROW_DOT(name, body, ...) \
  static void name(int n, const uint8_t *w, const uint8_t *a, size_t as, int nt, float *out, size_t os) { \
    switch (nt) { \
      AT_NT(4, body, ##__VA_ARGS__) AT_NT(3, body, ##__VA_ARGS__) AT_NT(2, body, ##__VA_ARGS__) \
      default: body(n, w, a, as, 1, out, os, ##__VA_ARGS__); break; \
    } \
  }
#define PACKED_DOT(name, body, ...) \
  static void name(int n, const uint8_t *w, const uint8_t *a, size_t as, int nt, float *out, size_t os) { \
    switch (nt) { \
      AT_NT(8, body, ##__VA_ARGS__) AT_NT(7, body, ##__VA_ARGS__) AT_NT(6, body, ##__VA_ARGS__) AT_NT(5, body, ##__VA_ARGS__) \
      AT_NT(4, body, ##__VA_ARGS__) AT_NT(3, body, ##__VA_ARGS__) AT_NT(2, body, ##__VA_ARGS__) \
      default: body(n, w, a, as, 1, out, os, ##__VA_ARGS__); break; \
    } \
  }

/* F32, F16, BF16: float32 activations */
ALWAYS_INLINE float float_weight(const uint8_t *w, int j, const int type) {
  if (type == F16) return f16_to_f32(w + 2 * j);
  if (type == BF16) return bf16_to_f32(w + 2 * j);
  float v;
  memcpy(&v, w + 4 * j, 4);
  return v;
}

ALWAYS_INLINE void dot_float(int n, const uint8_t *w, const uint8_t *a, size_t as, const int nt, float *out, size_t os, const int type) {
  const float *y[TILE];
  float sum[TILE];
  for (int t = 0; t < nt; t++) { y[t] = (const float *)(a + t * as); sum[t] = 0.0f; }
  int j = 0;
#ifdef QUANT_AVX2
  __m256 acc[TILE];
  for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
  for (; j + 8 <= n; j += 8) {
    const __m256 v = type == F32 ? _mm256_loadu_ps((const float *)(w + 4 * j))
      : type == F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 2 * j)))
      : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + 2 * j))), 16));
    for (int t = 0; t < nt; t++) acc[t] = _mm256_fmadd_ps(v, _mm256_loadu_ps(y[t] + j), acc[t]);
  }
  for (int t = 0; t < nt; t++) sum[t] = hsum256(acc[t]);
#endif
  for (; j < n; j++) {
    const float v = float_weight(w, j, type);
    for (int t = 0; t < nt; t++) sum[t] += v * y[t][j];
  }
  for (int t = 0; t < nt; t++) out[t * os] = sum[t];
}

/*
 * The four nibble types as x = d·q + m with codes q = 0..15 or 0..31: Q4_1 and Q5_1 store m, Q4_0
 * and Q5_0 have m = -8d and -16d. Codes as unsigned bytes take dpbusd (or maddubs) without the
 * sign juggling signed codes need, and the offset is m times the block sum q8_1 carries.
 */
#define NIBBLES_AT(type) ((type) == Q4_0 ? 2 : (type) == Q5_0 ? 6 : (type) == Q4_1 ? 4 : 8)
#define HIGH_BITS_AT(type) ((type) == Q5_0 ? 2 : 4) /* the Q5 types' fifth bits */

ALWAYS_INLINE float nibble_offset(const uint8_t *w, float d, const int type) {
  return type == Q4_0 ? -8.0f * d : type == Q5_0 ? -16.0f * d : f16_to_f32(w + 2);
}

#ifdef QUANT_AVX2
/*
 * acc[t] += d·dy·Σx·qy over block b of a Q8_0 row (at w) and of each token's q8_0 row. dpbusd
 * takes one unsigned side, so |x| (shared by the tokens) multiplies qy with x's sign moved onto it.
 */
ALWAYS_INLINE void q8_0_block(const uint8_t *w, int b, const block_q8_0 *const *y, const int nt, __m256 *acc) {
  const __m256i x = load256(w + 2), ax = _mm256_sign_epi8(x, x);
  const float d = f16_to_f32(w);
  for (int t = 0; t < nt; t++) {
    const __m256i p = dot_us8(ax, _mm256_sign_epi8(load256(y[t][b].qs), x));
    acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[t][b].d), _mm256_cvtepi32_ps(p), acc[t]);
  }
}

/* acc[t] += d·dy·Σq·qy and sum[t] += m·s over block b of a nibble-type row (at w) and of each token's q8_1 row */
ALWAYS_INLINE void nibble_block(const uint8_t *w, int b, const q8_1_row *y, const int nt, __m256 *acc, float *sum, const int type) {
  const float d = f16_to_f32(w), m = nibble_offset(w, d, type);
  __m256i q = nibbles32(w + NIBBLES_AT(type));
  if (type == Q5_0 || type == Q5_1) q = _mm256_or_si256(q, fifth_bits32(w + HIGH_BITS_AT(type)));
  for (int t = 0; t < nt; t++) {
    const __m256i p = dot_us8(q, load256(y[t].qs + 32 * b));
    acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[t].d[b]), _mm256_cvtepi32_ps(p), acc[t]);
    sum[t] += m * y[t].s[b];
  }
}
#endif

/*
 * Q8_0: a scale and 32 int8 per block, q8_0 activations. The SIMD loop alternates two sets of
 * accumulators, even and odd blocks, so that a single token's FMAs do not wait on each other.
 */
ALWAYS_INLINE void dot_q8_0_body(int n, const uint8_t *w, const uint8_t *a, size_t as, const int nt, float *out, size_t os) {
  const int nb = n / 32;
  const block_q8_0 *y[TILE];
  for (int t = 0; t < nt; t++) y[t] = (const block_q8_0 *)(a + t * as);
#ifdef QUANT_AVX2
  __m256 acc[2][TILE];
  for (int t = 0; t < nt; t++) acc[0][t] = acc[1][t] = _mm256_setzero_ps();
  int b = 0;
  for (; b + 2 <= nb; b += 2) {
    q8_0_block(w + b * BYTES_Q8_0, b, y, nt, acc[0]);
    q8_0_block(w + (b + 1) * BYTES_Q8_0, b + 1, y, nt, acc[1]);
  }
  if (b < nb) q8_0_block(w + b * BYTES_Q8_0, b, y, nt, acc[0]);
  for (int t = 0; t < nt; t++) out[t * os] = hsum256(_mm256_add_ps(acc[0][t], acc[1][t]));
#else
  float sum[TILE] = { 0 };
  for (int b = 0; b < nb; b++, w += BYTES_Q8_0) {
    const float d = f16_to_f32(w);
    const int8_t *x = (const int8_t *)(w + 2);
    for (int t = 0; t < nt; t++) {
      int s = 0;
      for (int j = 0; j < 32; j++) s += x[j] * y[t][b].qs[j];
      sum[t] += d * y[t][b].d * s;
    }
  }
  for (int t = 0; t < nt; t++) out[t * os] = sum[t];
#endif
}

#if defined(QUANT_AVX2) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define NIBBLES_AVX512 1
/*
 * Blocks b and b+1 of a nibble-type row (at w) with each token's q8_1 row, 64 codes in one 512-bit
 * vector: fewer instructions per block than 256 bits, which matters as one token's dot is bound by
 * them rather than by memory. acc[t] gets d·dy·Σq·qy, acc_m[t] m·s.
 */
ALWAYS_INLINE void nibble_pair(const uint8_t *w, int b, const q8_1_row *y, const int nt, __m512 *acc, __m128 *acc_m, const int type, const int bytes) {
  const uint8_t *w1 = w + bytes;
  const int at = NIBBLES_AT(type);
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(w + at))),
                                               _mm_loadu_si128((const __m128i *)(w1 + at)), 1);
  /* 128-bit lanes: block b's 16 bytes twice, then block b+1's; low nibbles from the first copy, high from the second */
  __m512i q = _mm512_shuffle_i64x2(_mm512_castsi256_si512(both), _mm512_castsi256_si512(both), 0x50);
  q = _mm512_and_si512(_mm512_mask_srli_epi16(q, 0xff00ff00, q, 4), _mm512_set1_epi8(0x0f));
  if (type == Q5_0 || type == Q5_1) {
    uint32_t h0, h1;
    memcpy(&h0, w + HIGH_BITS_AT(type), 4);
    memcpy(&h1, w1 + HIGH_BITS_AT(type), 4);
    q = _mm512_mask_add_epi8(q, (__mmask64)h0 | (__mmask64)h1 << 32, q, _mm512_set1_epi8(16));
  }
  /* d0 d1 m0 m1 (Q4_0 and Q5_0's m is an offset times d) */
  uint16_t h[4];
  memcpy(&h[0], w, 2);
  memcpy(&h[1], w1, 2);
  if (type == Q4_1 || type == Q5_1) { memcpy(&h[2], w + 2, 2); memcpy(&h[3], w1 + 2, 2); }
  const __m128 dm = _mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, (short)h[3], (short)h[2], (short)h[1], (short)h[0]));
  const __m128 m = type == Q4_0 ? _mm_mul_ps(dm, _mm_set1_ps(-8.0f)) : type == Q5_0 ? _mm_mul_ps(dm, _mm_set1_ps(-16.0f)) : _mm_movehl_ps(dm, dm);
  const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  for (int t = 0; t < nt; t++) {
    const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, _mm512_loadu_si512(y[t].qs + 32 * b));
    const __m128 s = _mm_mul_ps(dm, _mm_castpd_ps(_mm_load_sd((const double *)(y[t].d + b))));
    acc[t] = _mm512_fmadd_ps(_mm512_permutexvar_ps(halves, _mm512_castps128_ps512(s)), _mm512_cvtepi32_ps(p), acc[t]);
    acc_m[t] = _mm_fmadd_ps(m, _mm_castpd_ps(_mm_load_sd((const double *)(y[t].s + b))), acc_m[t]);
  }
}
#endif

/* Q4_0, Q5_0, Q4_1, Q5_1 with q8_1 activations: Σx·y = d·dy·Σq·qy + m·s (two accumulator sets as above) */
ALWAYS_INLINE void dot_nibbles(int n, const uint8_t *w, const uint8_t *a, size_t as, const int nt, float *out, size_t os, const int type) {
  const int bytes = type == Q4_0 ? BYTES_Q4_0 : type == Q5_0 ? BYTES_Q5_0 : type == Q4_1 ? BYTES_Q4_1 : BYTES_Q5_1, nb = n / 32;
  q8_1_row y[TILE];
  for (int t = 0; t < nt; t++) y[t] = q8_1_at(a + t * as, n);
  int b = 0;
#ifdef QUANT_AVX2
  float sum[2][TILE];
  __m256 acc[2][TILE];
  for (int t = 0; t < nt; t++) { acc[0][t] = acc[1][t] = _mm256_setzero_ps(); sum[0][t] = sum[1][t] = 0.0f; }
#ifdef NIBBLES_AVX512
  __m512 acc2[TILE];
  __m128 acc_m[TILE];
  for (int t = 0; t < nt; t++) { acc2[t] = _mm512_setzero_ps(); acc_m[t] = _mm_setzero_ps(); }
  for (; b + 2 <= nb; b += 2) nibble_pair(w + b * bytes, b, y, nt, acc2, acc_m, type, bytes);
  for (int t = 0; t < nt; t++) sum[0][t] = _mm512_reduce_add_ps(acc2[t]) + hsum128(acc_m[t]);
#else
  for (; b + 2 <= nb; b += 2) {
    nibble_block(w + b * bytes, b, y, nt, acc[0], sum[0], type);
    nibble_block(w + (b + 1) * bytes, b + 1, y, nt, acc[1], sum[1], type);
  }
#endif
  if (b < nb) nibble_block(w + b * bytes, b, y, nt, acc[0], sum[0], type);
  for (int t = 0; t < nt; t++) out[t * os] = hsum256(_mm256_add_ps(acc[0][t], acc[1][t])) + sum[0][t] + sum[1][t];
#else
  float sum[TILE] = { 0 };
  for (; b < nb; b++, w += bytes) {
    const float d = f16_to_f32(w), m = nibble_offset(w, d, type);
    uint8_t q[32];
    codes32(w + NIBBLES_AT(type), type == Q5_0 || type == Q5_1 ? w + HIGH_BITS_AT(type) : NULL, q);
    for (int t = 0; t < nt; t++) {
      int s = 0;
      for (int j = 0; j < 32; j++) s += q[j] * y[t].qs[32 * b + j];
      sum[t] += d * y[t].d[b] * s + m * y[t].s[b];
    }
  }
  for (int t = 0; t < nt; t++) out[t * os] = sum[t];
#endif
}

/*
 * The 8 six-bit scales (bytes 0..7) and 8 mins (bytes 8..15) of a Q4_K/Q5_K block from its 12
 * packed bytes (llama.cpp's unpacking; the same values as scaleMinK4 in block-types.ts). K4_SCALES
 * works on the bytes as 32-bit words u[0..2], and on vectors of such words as well (packed Q4_K).
 */
#define K4_SCALES(u) do { \
    (u)[3] = (((u)[2] >> 4) & 0x0f0f0f0f) | ((((u)[1] >> 6) & 0x03030303) << 4); \
    const __typeof__((u)[0]) mins_low = (u)[1] & 0x3f3f3f3f; \
    (u)[1] = ((u)[2] & 0x0f0f0f0f) | ((((u)[0] >> 6) & 0x03030303) << 4); \
    (u)[2] = mins_low; \
    (u)[0] &= 0x3f3f3f3f; \
  } while (0)

static inline void k4_scales(const uint8_t *p, uint32_t u[4]) {
  memcpy(u, p, 12);
  K4_SCALES(u);
}

/*
 * Q4_K, Q5_K: per 256, d and dmin, and per sub-block of 32 a scale and a min: x = d·sc·q - dmin·m.
 * Σx·y = dy·(d·Σ sc·Σq·qy - dmin·Σ m·Σqy), the second sum from q8_K's bsums.
 */
ALWAYS_INLINE void dot_q45_K(int n, const uint8_t *w, const uint8_t *a, size_t as, const int nt, float *out, size_t os, const int type) {
  const int five = type == Q5_K, bytes = five ? BYTES_Q5_K : BYTES_Q4_K;
  const block_q8_K *y[TILE];
  for (int t = 0; t < nt; t++) y[t] = (const block_q8_K *)(a + t * as);
#ifdef QUANT_AVX2
  __m256 acc[TILE];
  __m128 acc_m[TILE];
  for (int t = 0; t < nt; t++) { acc[t] = _mm256_setzero_ps(); acc_m[t] = _mm_setzero_ps(); }
#else
  float sum[TILE] = { 0 };
#endif
  for (int b = 0; b < n / 256; b++, w += bytes) {
    const float d = f16_to_f32(w), dmin = f16_to_f32(w + 2);
    const uint8_t *qs = w + (five ? 48 : 16), *qh = w + 16;
    uint32_t u[4];
    k4_scales(w + 4, u);
#ifdef QUANT_AVX2
    const __m256i sm = _mm256_cvtepu8_epi16(_mm_set_epi32((int)u[3], (int)u[2], (int)u[1], (int)u[0]));
    const __m256i scales = _mm256_permute2x128_si256(sm, sm, 0x00); /* the 8 scales in both halves */
    const __m128i mins = _mm256_extracti128_si256(sm, 1);
    const __m256i m4 = _mm256_set1_epi8(0x0f), m1 = _mm256_set1_epi8(1);
    const __m256i hbits = five ? load256(qh) : _mm256_setzero_si256();
    __m256i sumi[2][TILE]; /* low and high nibbles' sums: two chains of dependent multiply-adds, not one */
    for (int t = 0; t < nt; t++) sumi[0][t] = sumi[1][t] = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
      const __m256i bits = load256(qs + 32 * j);
      __m256i lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
      if (five) {
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j), m1), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j + 1), m1), 4));
      }
      const __m256i sc_lo = broadcast16(scales, 2 * j), sc_hi = broadcast16(scales, 2 * j + 1);
      for (int t = 0; t < nt; t++) {
        sumi[0][t] = madd_acc16(sumi[0][t], sc_lo, _mm256_maddubs_epi16(lo, load256(y[t][b].qs + 64 * j)));
        sumi[1][t] = madd_acc16(sumi[1][t], sc_hi, _mm256_maddubs_epi16(hi, load256(y[t][b].qs + 64 * j + 32)));
      }
    }
    for (int t = 0; t < nt; t++) {
      const __m128i sums32 = _mm_loadu_si128((const __m128i *)y[t][b].sums32);
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[t][b].d), _mm256_cvtepi32_ps(_mm256_add_epi32(sumi[0][t], sumi[1][t])), acc[t]);
      acc_m[t] = _mm_fmadd_ps(_mm_set1_ps(dmin * y[t][b].d), _mm_cvtepi32_ps(_mm_madd_epi16(mins, sums32)), acc_m[t]);
    }
#else
    const uint8_t *sc = (const uint8_t *)u, *mn = sc + 8;
    for (int t = 0; t < nt; t++) {
      int sumi = 0, summ = 0;
      for (int j = 0; j < 4; j++) {
        int s_lo = 0, s_hi = 0;
        for (int l = 0; l < 32; l++) {
          const int lo = (qs[32 * j + l] & 15) | (five && (qh[l] >> (2 * j) & 1) ? 16 : 0);
          const int hi = (qs[32 * j + l] >> 4) | (five && (qh[l] >> (2 * j + 1) & 1) ? 16 : 0);
          s_lo += lo * y[t][b].qs[64 * j + l];
          s_hi += hi * y[t][b].qs[64 * j + 32 + l];
        }
        sumi += sc[2 * j] * s_lo + sc[2 * j + 1] * s_hi;
      }
      for (int s = 0; s < 8; s++) summ += mn[s] * y[t][b].sums32[s];
      sum[t] += y[t][b].d * (d * sumi - dmin * summ);
    }
#endif
  }
  for (int t = 0; t < nt; t++) {
#ifdef QUANT_AVX2
    out[t * os] = hsum256(acc[t]) - hsum128(acc_m[t]);
#else
    out[t * os] = sum[t];
#endif
  }
}

/*
 * Q6_K: per 256, d and a signed scale per 16; 6-bit codes offset by 32 as 4 low bits (ql) and 2
 * high bits (qh). Σ sc·(q-32)·qy = Σ sc·q·qy - 32·Σ sc·bsum, so the codes multiply as unsigned bytes.
 */
ALWAYS_INLINE void dot_q6_K_body(int n, const uint8_t *w, const uint8_t *a, size_t as, const int nt, float *out, size_t os) {
  const block_q8_K *y[TILE];
  for (int t = 0; t < nt; t++) y[t] = (const block_q8_K *)(a + t * as);
#ifdef QUANT_AVX2
  __m256 acc[TILE];
  for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
  for (int b = 0; b < n / 256; b++, w += BYTES_Q6_K) {
    const float d = f16_to_f32(w + 208);
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)(w + 192));
    __m256i sumi[2][TILE]; /* two chains of dependent multiply-adds, not one */
    for (int t = 0; t < nt; t++) sumi[0][t] = sumi[1][t] = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      const __m256i bits1 = load256(w + 64 * h), bits2 = load256(w + 64 * h + 32), hb = load256(w + 128 + 32 * h);
      const __m256i q[4] = {
        _mm256_or_si256(_mm256_and_si256(bits1, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4)),
        _mm256_or_si256(_mm256_and_si256(bits2, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits2, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4)),
      };
      for (int k = 0; k < 4; k++) {
        /* groups g and g+1 of 16: scale g in the low half, g+1 in the high half */
        const int g = 8 * h + 2 * k;
        const __m256i sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, _mm_set_epi64x(0x0101010101010101LL * (g + 1), 0x0101010101010101LL * g)));
        for (int t = 0; t < nt; t++)
          sumi[k & 1][t] = madd_acc16(sumi[k & 1][t], sc, _mm256_maddubs_epi16(q[k], load256(y[t][b].qs + 128 * h + 32 * k)));
      }
    }
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    for (int t = 0; t < nt; t++) {
      const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, load256(y[t][b].bsums)), 5);
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[t][b].d), _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_add_epi32(sumi[0][t], sumi[1][t]), offset)), acc[t]);
    }
  }
  for (int t = 0; t < nt; t++) out[t * os] = hsum256(acc[t]);
#else
  float sum[TILE] = { 0 };
  for (int b = 0; b < n / 256; b++, w += BYTES_Q6_K) {
    const float d = f16_to_f32(w + 208);
    const int8_t *sc = (const int8_t *)(w + 192);
    for (int t = 0; t < nt; t++) {
      const int8_t *qy = y[t][b].qs;
      int sumi = 0;
      for (int h = 0; h < 2; h++) {
        const uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;
        for (int k = 0; k < 4; k++) {
          for (int l = 0; l < 32; l++) {
            const int low = (k & 1 ? ql[l + 32] : ql[l]) >> (k & 2 ? 4 : 0) & 15;
            const int q = low | ((qh[l] >> (2 * k)) & 3) << 4;
            sumi += sc[8 * h + 2 * k + l / 16] * q * qy[128 * h + 32 * k + l];
          }
        }
      }
      int offset = 0;
      for (int g = 0; g < 16; g++) offset += sc[g] * y[t][b].bsums[g];
      sum[t] += d * y[t][b].d * (sumi - 32 * offset);
    }
  }
  for (int t = 0; t < nt; t++) out[t * os] = sum[t];
#endif
}


/* ---- packed groups: PACK_ROWS rows interleaved ---- */

/*
 * qrepack lays a matrix's rows out in groups of PACK_ROWS (rows past the last whole group stay as
 * they are). A group keeps its rows' blocks in order, and its block b is each field of the rows'
 * block b in turn (pack_field, the type's table row), cut in units: the 16 rows' f16 scales side by
 * side, then their codes 4 bytes at a time (row r's bytes c..c+3 of the field at 16·c + 4·r). So one
 * 512-bit load holds the same 4 codes of 16 rows, one row per int32 lane: a dpbusd with 4 activation
 * codes broadcast makes 16 rows' partial dots, a scale applies to 16 rows in one multiply, and each
 * token's accumulator is one register (llama.cpp's repack.cpp interleaves 8 rows the same way).
 */
#ifdef QUANT_AVX512
typedef uint32_t u32x16 __attribute__((vector_size(64))); /* for K4_SCALES on 16 rows' words */

static inline __m512i load512(const void *p) { return _mm512_loadu_si512(p); }

/* The lines of the block PREFETCH_BYTES ahead of this one's `bytes` at w: without it, a group's decode stalls on memory */
ALWAYS_INLINE void prefetch_ahead(const uint8_t *w, const int bytes) {
  for (int i = 0; i < bytes; i += 64) _mm_prefetch((const char *)w + PREFETCH_BYTES + i, _MM_HINT_T0);
}

static inline __m512i broadcast32(const void *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

/*
 * Σ over the 32 elements of 16 rows: q[k] holds elements 4k..4k+3 of each row, y the activation
 * codes. One token alone splits the dependent dpbusd into two chains (its latency is otherwise the time).
 */
ALWAYS_INLINE __m512i dot32x16(const __m512i q[8], const int8_t *y, const int nt) {
  __m512i s[2] = { _mm512_setzero_si512(), _mm512_setzero_si512() };
  for (int k = 0; k < 8; k++) s[nt == 1 ? k & 1 : 0] = _mm512_dpbusd_epi32(s[nt == 1 ? k & 1 : 0], q[k], broadcast32(y + 4 * k));
  return nt == 1 ? _mm512_add_epi32(s[0], s[1]) : s[0];
}

/* Each int32 lane's bytes picked by the 4 indices in idx (0x80: zero), as vpshufb within each lane */
static inline __m512i lane_bytes(__m512i v, uint32_t idx) {
  return _mm512_shuffle_epi8(v, _mm512_add_epi8(_mm512_set1_epi32((int)idx), _mm512_set4_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0)));
}

/*
 * Q4_0 and Q8_0 packed, with q8_1 activations. The codes are unsigned for dpbusd: Q4_0's are, Q8_0's
 * were made so by adding 128 at repack (pack_field.flip). Σx·y = d·(dy·Σq·qy + offset·s) with
 * offset -8 and -128.
 */
ALWAYS_INLINE void packed32_body(int n, const uint8_t *w, const uint8_t *a, size_t as, const int nt, float *out, size_t os, const int type) {
  const int q8 = type == Q8_0;
  const size_t bytes = PACK_ROWS * (q8 ? BYTES_Q8_0 : BYTES_Q4_0);
  q8_1_row y[PACK_TILE];
  __m512 acc[PACK_TILE];
  for (int t = 0; t < nt; t++) { y[t] = q8_1_at(a + t * as, n); acc[t] = _mm512_setzero_ps(); }
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  for (int b = 0; b < n / 32; b++, w += bytes) {
    prefetch_ahead(w, (int)bytes);
    const __m512 d = _mm512_cvtph_ps(load256(w)), m = _mm512_mul_ps(d, _mm512_set1_ps(q8 ? -128.0f : -8.0f));
    const uint8_t *qs = w + 2 * PACK_ROWS;
    __m512i q[8];
    for (int k = 0; k < 8; k++) /* Q4_0's low nibbles are elements 0..15, its high ones 16..31 */
      q[k] = q8 ? load512(qs + 64 * k) : _mm512_and_si512(k < 4 ? load512(qs + 64 * k) : _mm512_srli_epi16(load512(qs + 64 * (k - 4)), 4), m4);
    for (int t = 0; t < nt; t++) {
      const __m512i s = dot32x16(q, y[t].qs + 32 * b, nt);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(d, _mm512_set1_ps(y[t].d[b])), acc[t]);
      acc[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(y[t].s[b]), acc[t]);
    }
  }
  for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + t * os, acc[t]);
}

/*
 * Q4_K packed: per 256, the rows' d, dmin, the 12 scale bytes as 3 words, then the codes. As dot_q45_K,
 * Σx·y = dy·(d·Σ sc·Σq·qy - dmin·Σ m·Σqy); the mins' sum is 4 dpwssd of two sub-blocks' mins (int16)
 * with two of q8_K's sums per 32.
 */
ALWAYS_INLINE void packed_q4_K_body(int n, const uint8_t *w, const uint8_t *a, size_t as, const int nt, float *out, size_t os) {
  const block_q8_K *y[PACK_TILE];
  __m512 acc[PACK_TILE];
  for (int t = 0; t < nt; t++) { y[t] = (const block_q8_K *)(a + t * as); acc[t] = _mm512_setzero_ps(); }
  const __m512i m4 = _mm512_set1_epi8(0x0f), m8 = _mm512_set1_epi32(0xff);
  for (int b = 0; b < n / 256; b++, w += PACK_ROWS * BYTES_Q4_K) {
    prefetch_ahead(w, PACK_ROWS * BYTES_Q4_K);
    const __m512 d = _mm512_cvtph_ps(load256(w)), dmin = _mm512_cvtph_ps(load256(w + 32));
    u32x16 u[4] = { (u32x16)load512(w + 64), (u32x16)load512(w + 128), (u32x16)load512(w + 192) };
    K4_SCALES(u);
    /* int16 pairs of mins (m0, m1), (m2, m3), (m4, m5), (m6, m7): bytes 0, 1 or 2, 3 zero-extended */
    const __m512i mins[4] = { lane_bytes((__m512i)u[2], 0x80018000), lane_bytes((__m512i)u[2], 0x80038002),
                              lane_bytes((__m512i)u[3], 0x80018000), lane_bytes((__m512i)u[3], 0x80038002) };
    for (int t = 0; t < nt; t++) {
      __m512i s = _mm512_setzero_si512();
      for (int i = 0; i < 4; i++) s = _mm512_dpwssd_epi32(s, mins[i], broadcast32(y[t][b].sums32 + 2 * i));
      acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dmin, _mm512_set1_ps(y[t][b].d)), acc[t]);
    }
    const uint8_t *qs = w + 256;
    for (int j = 0; j < 8; j++) { /* sub-block j: the low nibbles of codes 64·(j/2).. for even j, the high ones for odd */
      const __m512 sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_and_si512((__m512i)(u[j / 4] >> (8 * (j % 4))), m8)));
      __m512i q[8];
      for (int k = 0; k < 8; k++) {
        const __m512i v = load512(qs + 64 * (8 * (j / 2) + k));
        q[k] = _mm512_and_si512(j & 1 ? _mm512_srli_epi16(v, 4) : v, m4);
      }
      for (int t = 0; t < nt; t++) {
        const __m512i s = dot32x16(q, y[t][b].qs + 32 * j, nt);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(sc, _mm512_set1_ps(y[t][b].d)), acc[t]);
      }
    }
  }
  for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + t * os, acc[t]);
}

/*
 * Q6_K packed: per 256, the rows' d, their 16 scales per 16 as 4 words, the low 4 bits and the high
 * 2 bits of the codes. As dot_q6_K_body, Σ sc·(q-32)·qy = Σ sc·Σq·qy - 32·Σ sc·bsum, all in int32
 * (at most 2^28 per block): the scales multiply 16-element sums, the offset is 8 dpwssd of two
 * scales times -32 (int16) with two of q8_K's bsums.
 */
ALWAYS_INLINE void packed_q6_K_body(int n, const uint8_t *w, const uint8_t *a, size_t as, const int nt, float *out, size_t os) {
  const block_q8_K *y[PACK_TILE];
  __m512 acc[PACK_TILE];
  for (int t = 0; t < nt; t++) { y[t] = (const block_q8_K *)(a + t * as); acc[t] = _mm512_setzero_ps(); }
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  for (int b = 0; b < n / 256; b++, w += PACK_ROWS * BYTES_Q6_K) {
    prefetch_ahead(w, PACK_ROWS * BYTES_Q6_K);
    const __m512 d = _mm512_cvtph_ps(load256(w));
    const uint8_t *scales = w + 32, *ql = scales + 4 * 64, *qh = ql + 32 * 64;
    __m512i sum[PACK_TILE];
    for (int t = 0; t < nt; t++) sum[t] = _mm512_setzero_si512();
    for (int p = 0; p < 8; p++) { /* scales 2p, 2p+1 as int16 pairs (bytes into the high halves, shifted down to 32·sc), negated */
      const __m512i sc = _mm512_srai_epi16(lane_bytes(load512(scales + 64 * (p / 2)), p % 2 ? 0x03800280 : 0x01800080), 3);
      const __m512i pair = _mm512_sub_epi16(_mm512_setzero_si512(), sc);
      for (int t = 0; t < nt; t++) sum[t] = _mm512_dpwssd_epi32(sum[t], pair, broadcast32(y[t][b].bsums + 2 * p));
    }
    for (int h = 0; h < 2; h++)
      for (int k = 0; k < 4; k++) { /* elements 128h + 32k.., as in dot_q6_K_body: groups g and g+1 of 16 */
        const int g = 8 * h + 2 * k;
        __m512i q[8];
        for (int i = 0; i < 8; i++) {
          const __m512i low = load512(ql + 64 * (16 * h + 8 * (k & 1) + i)), high = load512(qh + 64 * (8 * h + i));
          q[i] = _mm512_or_si512(_mm512_and_si512(k & 2 ? _mm512_srli_epi16(low, 4) : low, m4),
                                 _mm512_and_si512(k < 2 ? _mm512_slli_epi16(high, 4 - 2 * k) : _mm512_srli_epi16(high, 2 * k - 4), m30));
        }
        const __m512i sc4 = load512(scales + 64 * (g / 4));
        const __m512i sc0 = _mm512_srai_epi32(_mm512_slli_epi32(sc4, 24 - 8 * (g % 4)), 24), sc1 = _mm512_srai_epi32(_mm512_slli_epi32(sc4, 16 - 8 * (g % 4)), 24);
        for (int t = 0; t < nt; t++) {
          const int8_t *qy = y[t][b].qs + 128 * h + 32 * k;
          __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
          for (int i = 0; i < 4; i++) {
            s0 = _mm512_dpbusd_epi32(s0, q[i], broadcast32(qy + 4 * i));
            s1 = _mm512_dpbusd_epi32(s1, q[i + 4], broadcast32(qy + 16 + 4 * i));
          }
          sum[t] = _mm512_add_epi32(sum[t], _mm512_add_epi32(_mm512_mullo_epi32(s0, sc0), _mm512_mullo_epi32(s1, sc1)));
        }
      }
    for (int t = 0; t < nt; t++) acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[t]), _mm512_mul_ps(d, _mm512_set1_ps(y[t][b].d)), acc[t]);
  }
  for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + t * os, acc[t]);
}
#endif

ROW_DOT(dot_f32, dot_float, F32)
ROW_DOT(dot_f16, dot_float, F16)
ROW_DOT(dot_bf16, dot_float, BF16)
ROW_DOT(dot_q8_0, dot_q8_0_body)
ROW_DOT(dot_q4_0, dot_nibbles, Q4_0)
ROW_DOT(dot_q5_0, dot_nibbles, Q5_0)
ROW_DOT(dot_q4_1, dot_nibbles, Q4_1)
ROW_DOT(dot_q5_1, dot_nibbles, Q5_1)
ROW_DOT(dot_q4_K, dot_q45_K, Q4_K)
ROW_DOT(dot_q5_K, dot_q45_K, Q5_K)
ROW_DOT(dot_q6_K, dot_q6_K_body)

#ifdef QUANT_AVX512
PACKED_DOT(dot_q8_0x16, packed32_body, Q8_0)
PACKED_DOT(dot_q4_0x16, packed32_body, Q4_0)
PACKED_DOT(dot_q4_Kx16, packed_q4_K_body)
PACKED_DOT(dot_q6_Kx16, packed_q6_K_body)
#endif

/* A field of a block as packed groups interleave it: at its byte offset, its bytes, cut in units; flip: add 128 to each byte */
typedef struct { uint8_t at, bytes, unit, flip; } pack_field;
#define MAX_FIELDS 4

/*
 * The weight types: ggml id (plus PACKED for a repacked layout), block size in elements and bytes,
 * the activations they take, their dot and the rows and tokens it takes at once, and for a packed
 * layout the fields of a block in the order the group interleaves them.
 */
typedef struct { int id, block_elems, block_bytes, act; row_dot_fn dot; int rows, tokens; pack_field pack[MAX_FIELDS]; } quant_type;

static const quant_type TYPES[] = {
  { F32, 1, 4, ACT_F32, dot_f32, 1, TILE },
  { F16, 1, 2, ACT_F32, dot_f16, 1, TILE },
  { BF16, 1, 2, ACT_F32, dot_bf16, 1, TILE },
  { Q8_0, 32, BYTES_Q8_0, ACT_Q8_0, dot_q8_0, 1, TILE },
  { Q4_0, 32, BYTES_Q4_0, ACT_Q8_1, dot_q4_0, 1, TILE },
  { Q5_0, 32, BYTES_Q5_0, ACT_Q8_1, dot_q5_0, 1, TILE },
  { Q4_1, 32, BYTES_Q4_1, ACT_Q8_1, dot_q4_1, 1, TILE },
  { Q5_1, 32, BYTES_Q5_1, ACT_Q8_1, dot_q5_1, 1, TILE },
  { Q4_K, 256, BYTES_Q4_K, ACT_Q8_K, dot_q4_K, 1, TILE },
  { Q5_K, 256, BYTES_Q5_K, ACT_Q8_K, dot_q5_K, 1, TILE },
  { Q6_K, 256, BYTES_Q6_K, ACT_Q8_K, dot_q6_K, 1, TILE },
#ifdef QUANT_AVX512
  /* d; codes (+128) */
  { Q8_0 | PACKED, 32, BYTES_Q8_0, ACT_Q8_1, dot_q8_0x16, PACK_ROWS, PACK_TILE, { { 0, 2, 2, 0 }, { 2, 32, 4, 1 } } },
  /* d; nibbles */
  { Q4_0 | PACKED, 32, BYTES_Q4_0, ACT_Q8_1, dot_q4_0x16, PACK_ROWS, PACK_TILE, { { 0, 2, 2, 0 }, { 2, 16, 4, 0 } } },
  /* d; dmin; scales and mins; nibbles */
  { Q4_K | PACKED, 256, BYTES_Q4_K, ACT_Q8_K, dot_q4_Kx16, PACK_ROWS, PACK_TILE, { { 0, 2, 2, 0 }, { 2, 2, 2, 0 }, { 4, 12, 4, 0 }, { 16, 128, 4, 0 } } },
  /* d; scales; low bits; high bits */
  { Q6_K | PACKED, 256, BYTES_Q6_K, ACT_Q8_K, dot_q6_Kx16, PACK_ROWS, PACK_TILE, { { 208, 2, 2, 0 }, { 192, 16, 4, 0 }, { 0, 128, 4, 0 }, { 128, 64, 4, 0 } } },
#endif
};

static const quant_type *find_type(int id) {
  for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++) if (TYPES[i].id == id) return &TYPES[i];
  return NULL;
}

/* ---- the products ---- */

/*
 * One matrix's rows of a call: out[t·stride + r] for its rows r (a packed matrix's tail rows are a
 * second one); or, for a product in units, out64 instead of out.
 */
typedef struct { float *out; double *out64; const uint8_t *w; const quant_type *type; int rows; size_t stride; } matrix;

/*
 * One group (or row) of a product in units, into out64 at out (tokens os apart): each unit of `unit`
 * columns (the last may be short) dotted on its own in float32, the units' sums added in float64 in
 * column order. A ring member whose columns are whole units computes exactly the units one device
 * does, so the ring's sum of its members' float64 partials is one device's sum: the same float32 once
 * rounded (forward.ts), token for token.
 */
static void group_units(const quant_type *q, const uint8_t *w, int cols, int unit, const uint8_t *act, size_t as, int nt, double *out, size_t os) {
  const size_t unit_w = (size_t)(unit / q->block_elems) * q->block_bytes * q->rows; /* from a group's (or row's) start */
  const size_t unit_a = (size_t)(unit / ACTS[q->act].block_elems) * ACTS[q->act].block_bytes;
  float part[PACK_TILE * PACK_ROWS];
  for (int i = 0; i < nt; i++) for (int j = 0; j < q->rows; j++) out[i * os + j] = 0.0;
  for (int u = 0; u * unit < cols; u++) {
    const int n = cols - u * unit < unit ? cols - u * unit : unit;
    q->dot(n, w + u * unit_w, act + u * unit_a, as, nt, part, q->rows);
    for (int i = 0; i < nt; i++) for (int j = 0; j < q->rows; j++) out[i * os + j] += part[i * q->rows + j];
  }
}

/*
 * Rows [r0, r1) of m for all tokens: ROW_CHUNK rows at a time (in L1) through the tokens, as many
 * rows and tokens at once as the type's dot takes; a product in units (m->out64) a unit at a time.
 */
static void matrix_rows(const matrix *m, int r0, int r1, int cols, int unit, const uint8_t *act, size_t as, int ntok) {
  const quant_type *q = m->type;
  const size_t rb = (size_t)(cols / q->block_elems) * q->block_bytes;
  for (int c = r0; c < r1; c += ROW_CHUNK) {
    const int ce = c + ROW_CHUNK < r1 ? c + ROW_CHUNK : r1;
    for (int t = 0; t < ntok; t += q->tokens) {
      const int nt = ntok - t < q->tokens ? ntok - t : q->tokens;
      for (int r = c; r < ce; r += q->rows) {
        if (m->out64) group_units(q, m->w + r * rb, cols, unit, act + t * as, as, nt, m->out64 + t * m->stride + r, m->stride);
        else q->dot(cols, m->w + r * rb, act + t * as, as, nt, m->out + t * m->stride + r, m->stride);
      }
    }
  }
}

/* Where thread k of nth starts in rows [0, total): even shares, cut at multiples of ROW_CHUNK */
static int share_start(int total, int nth, int k) {
  return k >= nth ? total : (int)((int64_t)total * k / nth / ROW_CHUNK * ROW_CHUNK);
}

/* Quantized activations: grown as needed, per calling thread (each Node worker has its own) */
static _Thread_local uint8_t *scratch;
static _Thread_local size_t scratch_size;

/*
 * All matrices of one input x (ntok tokens of cols) in one parallel region: the activations are
 * quantized once per activation type (tokens split over the threads), then the matrices' rows,
 * taken end to end, are split evenly. Returns 0 when scratch cannot be allocated.
 */
static int run(const matrix *ms, int count, int cols, int unit, const float *x, int ntok, int threads) {
  size_t at[N_ACTS], row[N_ACTS], need = 0;
  int acts[N_ACTS], nacts = 0, seen[N_ACTS] = { 0 };
  int64_t total = 0;
  for (int i = 0; i < count; i++) {
    const int a = ms[i].type->act;
    total += ms[i].rows;
    if (seen[a]++) continue;
    row[a] = (size_t)(cols / ACTS[a].block_elems) * ACTS[a].block_bytes;
    if (ACTS[a].quantize) { at[a] = need; need += row[a] * ntok; acts[nacts++] = a; }
  }
  if (need > scratch_size) {
    free(scratch);
    scratch_size = (need + 63) & ~(size_t)63;
    scratch = aligned_alloc(64, scratch_size);
    if (!scratch) { scratch_size = 0; return 0; }
  }
  /* pointers taken here: inside the region, scratch would name each OpenMP thread's own (empty) buffer */
  uint8_t *const buf = scratch;
  const uint8_t *base[N_ACTS];
  for (int a = 0; a < N_ACTS; a++) if (seen[a]) base[a] = ACTS[a].quantize ? buf + at[a] : (const uint8_t *)x;

  #pragma omp parallel num_threads(threads)
  {
    #pragma omp for schedule(static)
    for (int i = 0; i < nacts * ntok; i++) {
      const int a = acts[i / ntok], t = i % ntok, span = unit > 0 ? unit : cols;
      /* in units, each unit's blocks alone: q8_1 keeps a row's scales after its codes, and a unit is dotted as a row */
      for (int c = 0; c < cols; c += span)
        ACTS[a].quantize(x + (size_t)t * cols + c, cols - c < span ? cols - c : span, buf + at[a] + t * row[a] + (size_t)(c / ACTS[a].block_elems) * ACTS[a].block_bytes);
    }
    const int nth = omp_get_num_threads(), me = omp_get_thread_num();
    const int lo = share_start((int)total, nth, me), hi = share_start((int)total, nth, me + 1);
    int first = 0;
    for (int i = 0; i < count; first += ms[i].rows, i++) {
      /* cut between packed groups (a tail matrix before this one may have moved them off ROW_CHUNK's multiples) */
      const int g = ms[i].type->rows;
      const int r0 = (lo > first ? lo - first : 0) / g * g, r1 = (hi - first < ms[i].rows ? hi - first : ms[i].rows) / g * g;
      const int a = ms[i].type->act;
      if (r0 < r1) matrix_rows(&ms[i], r0, r1, cols, unit, base[a], row[a], ntok);
    }
  }
  return 1;
}

/* ---- N-API ---- */

static int get_int(napi_env env, napi_value v, int *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok || *out < 0) {
    napi_throw_type_error(env, NULL, "expected a non-negative integer");
    return 0;
  }
  return 1;
}

/* The data and element count of a typed array of the given type */
static void *get_array(napi_env env, napi_value v, napi_typedarray_type want, size_t *length, const char *what) {
  napi_typedarray_type type;
  void *data;
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, length, &data, NULL, NULL) != napi_ok || type != want) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  /* an empty view may have no data pointer; any non-NULL marker will do, as nothing is read from it */
  return data ? data : (void *)"";
}

/*
 * One matrix's view checked (the type known, cols in whole blocks, w holding rows × rowBytes and
 * out rows × ntok) and added to ms at *count: a packed matrix as its whole groups, then its tail
 * rows (plain layout) as a second matrix. Throws and returns 0 otherwise.
 */
static int add_matrix(napi_env env, matrix *ms, int *count, float *out, double *out64, const uint8_t *w, int id, int rows, int cols, size_t n_w, size_t n_out, int ntok) {
  const quant_type *type = find_type(id);
  if (!type) { napi_throw_range_error(env, NULL, "qmatmul: unknown or unsupported ggml type"); return 0; }
  if (cols % type->block_elems) { napi_throw_range_error(env, NULL, "qmatmul: cols is not a whole number of blocks"); return 0; }
  const uint64_t rb = (uint64_t)(cols / type->block_elems) * type->block_bytes;
  if ((uint64_t)n_w < rb * rows || (uint64_t)n_out < (uint64_t)rows * ntok) {
    napi_throw_range_error(env, NULL, "qmatmul: a view is smaller than rows, cols and nTokens need");
    return 0;
  }
  const int whole = rows / type->rows * type->rows;
  ms[(*count)++] = (matrix){ out, out64, w, type, whole, (size_t)rows };
  if (whole < rows) ms[(*count)++] = (matrix){ out ? out + whole : NULL, out64 ? out64 + whole : NULL, w + whole * rb, find_type(id & ~PACKED), rows - whole, (size_t)rows };
  return 1;
}

/* The shared tail of both calls: x checked against nTokens × cols, then the product */
static napi_value product(napi_env env, const matrix *ms, int count, int cols, int unit, const float *x, size_t n_x, int ntok, int threads) {
  if ((uint64_t)n_x < (uint64_t)ntok * cols) { napi_throw_range_error(env, NULL, "qmatmul: x is smaller than nTokens × cols"); return NULL; }
  int64_t total = 0;
  for (int i = 0; i < count; i++) total += ms[i].rows;
  if (total > INT_MAX) { napi_throw_range_error(env, NULL, "qmatmul: too many rows"); return NULL; }
  if (total == 0 || ntok == 0) return NULL;
  if (!run(ms, count, cols, unit, x, ntok, threads < 1 ? 1 : threads > 256 ? 256 : threads)) napi_throw_error(env, NULL, "qmatmul: out of memory");
  return NULL;
}

/*
 * qmatmul(out, w, type, rows, cols, x, nTokens, threads): out[t·rows + r] = Σ_j W[r, j]·x[t·cols + j];
 * with `units`, qmatmulUnits(out64, w, type, rows, cols, unit, x, nTokens, threads): the same into a
 * Float64Array, the columns dotted a unit (of whole blocks) at a time and the units summed in
 * float64 (group_units).
 */
static napi_value one_matrix(napi_env env, napi_callback_info info, const int units) {
  size_t argc = 9;
  napi_value argv[9];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != (size_t)(units ? 9 : 8)) {
    napi_throw_type_error(env, NULL, units ? "qmatmulUnits(out64, w, type, rows, cols, unit, x, nTokens, threads)" : "qmatmul(out, w, type, rows, cols, x, nTokens, threads)");
    return NULL;
  }
  napi_value *rest = argv + (units ? 6 : 5); /* x, nTokens, threads */
  size_t n_out, n_w, n_x;
  void *out = units ? get_array(env, argv[0], napi_float64_array, &n_out, "qmatmulUnits: out64 must be a Float64Array")
                    : get_array(env, argv[0], napi_float32_array, &n_out, "qmatmul: out must be a Float32Array");
  const uint8_t *w = out ? get_array(env, argv[1], napi_uint8_array, &n_w, "qmatmul: w must be a Uint8Array") : NULL;
  const float *x = w ? get_array(env, rest[0], napi_float32_array, &n_x, "qmatmul: x must be a Float32Array") : NULL;
  int type, rows, cols, unit = 0, ntok, threads;
  if (!x || !get_int(env, argv[2], &type) || !get_int(env, argv[3], &rows) || !get_int(env, argv[4], &cols) ||
      (units && !get_int(env, argv[5], &unit)) || !get_int(env, rest[1], &ntok) || !get_int(env, rest[2], &threads)) return NULL;
  const quant_type *t = find_type(type);
  if (units && t && (unit < 1 || unit % t->block_elems || unit % ACTS[t->act].block_elems)) {
    napi_throw_range_error(env, NULL, "qmatmulUnits: unit must be a positive number of whole blocks");
    return NULL;
  }
  matrix ms[2];
  int count = 0;
  if (!add_matrix(env, ms, &count, units ? NULL : out, units ? out : NULL, w, type, rows, cols, n_w, n_out, ntok)) return NULL;
  return product(env, ms, count, cols, unit, x, n_x, ntok, threads);
}

static napi_value js_qmatmul(napi_env env, napi_callback_info info) { return one_matrix(env, info, 0); }
static napi_value js_qmatmul_units(napi_env env, napi_callback_info info) { return one_matrix(env, info, 1); }

/* The Float32Array or Uint8Array at index i of a JavaScript array */
static void *get_element(napi_env env, napi_value array, uint32_t i, napi_typedarray_type want, size_t *length, const char *what) {
  napi_value v;
  if (napi_get_element(env, array, i, &v) != napi_ok) { napi_throw_type_error(env, NULL, what); return NULL; }
  return get_array(env, v, want, length, what);
}

static int array_length(napi_env env, napi_value v, uint32_t *length) {
  bool is;
  if (napi_is_array(env, v, &is) != napi_ok || !is || napi_get_array_length(env, v, length) != napi_ok) {
    napi_throw_type_error(env, NULL, "qmatmulGroup: outs and ws must be arrays");
    return 0;
  }
  return 1;
}

/*
 * qmatmulGroup(outs, ws, types, rows, cols, x, nTokens, threads): qmatmul of every ws[i] (types[i],
 * rows[i]; types and rows may be longer than ws) with the same x, in one parallel region.
 */
static napi_value js_qmatmul_group(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 8) { napi_throw_type_error(env, NULL, "qmatmulGroup(outs, ws, types, rows, cols, x, nTokens, threads)"); return NULL; }
  uint32_t count, count_w;
  size_t n_types, n_rows, n_x;
  if (!array_length(env, argv[0], &count) || !array_length(env, argv[1], &count_w)) return NULL;
  if (count != count_w || count > MAX_GROUP) { napi_throw_range_error(env, NULL, "qmatmulGroup: outs and ws must have the same length, at most 16"); return NULL; }
  const int32_t *types = get_array(env, argv[2], napi_int32_array, &n_types, "qmatmulGroup: types must be an Int32Array");
  const int32_t *rows = types ? get_array(env, argv[3], napi_int32_array, &n_rows, "qmatmulGroup: rows must be an Int32Array") : NULL;
  const float *x = rows ? get_array(env, argv[5], napi_float32_array, &n_x, "qmatmulGroup: x must be a Float32Array") : NULL;
  int cols, ntok, threads;
  if (!x || !get_int(env, argv[4], &cols) || !get_int(env, argv[6], &ntok) || !get_int(env, argv[7], &threads)) return NULL;
  if (n_types < count || n_rows < count) { napi_throw_range_error(env, NULL, "qmatmulGroup: types and rows are shorter than ws"); return NULL; }
  matrix ms[2 * MAX_GROUP];
  int n = 0;
  for (uint32_t i = 0; i < count; i++) {
    size_t n_out, n_w;
    float *out = get_element(env, argv[0], i, napi_float32_array, &n_out, "qmatmulGroup: outs must hold Float32Arrays");
    const uint8_t *w = out ? get_element(env, argv[1], i, napi_uint8_array, &n_w, "qmatmulGroup: ws must hold Uint8Arrays") : NULL;
    if (!w) return NULL;
    if (rows[i] < 0) { napi_throw_range_error(env, NULL, "qmatmulGroup: negative rows"); return NULL; }
    if (!add_matrix(env, ms, &n, out, NULL, w, types[i], rows[i], cols, n_w, n_out, ntok)) return NULL;
  }
  return product(env, ms, n, cols, 0, x, n_x, ntok, threads);
}

/* One group of PACK_ROWS rows (src: the rows as they are, rb bytes each, nb blocks) interleaved into dst as the packed type t lays it out */
static void pack_group(const quant_type *t, const uint8_t *src, size_t rb, int nb, uint8_t *dst) {
  for (int b = 0; b < nb; b++)
    for (const pack_field *f = t->pack; f < t->pack + MAX_FIELDS && f->bytes; f++)
      for (int c = 0; c < f->bytes; c += f->unit)
        for (int r = 0; r < PACK_ROWS; r++, dst += f->unit) {
          memcpy(dst, src + r * rb + (size_t)b * t->block_bytes + f->at + c, f->unit);
          if (f->flip) for (int k = 0; k < f->unit; k++) dst[k] ^= 0x80;
        }
}

/*
 * qrepack(w, type, rows, cols): the rows × cols matrix of ggml `type` in w laid out in place as
 * type | PACKED (packed groups, above), rows past the last whole group left as they are. Returns
 * false, changing nothing, where the type has no packed layout in this build.
 */
static napi_value js_qrepack(napi_env env, napi_callback_info info) {
  size_t argc = 4, n_w;
  napi_value argv[4], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 4) { napi_throw_type_error(env, NULL, "qrepack(w, type, rows, cols)"); return NULL; }
  uint8_t *w = get_array(env, argv[0], napi_uint8_array, &n_w, "qrepack: w must be a Uint8Array");
  int type, rows, cols;
  if (!w || !get_int(env, argv[1], &type) || !get_int(env, argv[2], &rows) || !get_int(env, argv[3], &cols)) return NULL;
  const quant_type *t = type & PACKED ? NULL : find_type(type | PACKED);
  if (t) {
    if (cols % t->block_elems) { napi_throw_range_error(env, NULL, "qrepack: cols is not a whole number of blocks"); return NULL; }
    const size_t rb = (size_t)(cols / t->block_elems) * t->block_bytes;
    if ((uint64_t)n_w < (uint64_t)rb * rows) { napi_throw_range_error(env, NULL, "qrepack: w is smaller than rows × cols"); return NULL; }
    uint8_t *group = malloc(PACK_ROWS * rb);
    if (!group) { napi_throw_error(env, NULL, "qrepack: out of memory"); return NULL; }
    for (int r = 0; r + PACK_ROWS <= rows; r += PACK_ROWS) {
      memcpy(group, w + r * rb, PACK_ROWS * rb);
      pack_group(t, group, rb, cols / t->block_elems, w + r * rb);
    }
    free(group);
  }
  napi_get_boolean(env, t != NULL, &result);
  return result;
}

void mesh_register_quant(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "qmatmul", NULL, js_qmatmul, NULL, NULL, NULL, napi_default, NULL },
    { "qmatmulGroup", NULL, js_qmatmul_group, NULL, NULL, NULL, napi_default, NULL },
    { "qmatmulUnits", NULL, js_qmatmul_units, NULL, NULL, NULL, napi_default, NULL },
    { "qrepack", NULL, js_qrepack, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, 4, props);
}
