/*
 * The forward pass's hot loops in C, as llama2.c's run.c writes them: matrix-vector products
 * (OpenMP over rows; q/k/v together, and the FFN with its SwiGLU in one parallel region) and one
 * layer's attention over the KV cache (OpenMP over heads); and a hint that puts the weights on
 * huge pages. Built with the machine's compiler at install (-O3 -march=native), so gcc vectorises them for this CPU, which
 * WebAssembly's 128-bit SIMD cannot. Every array is a Float32Array view owned by JavaScript: nothing
 * is copied, and pointers are used only during the call.
 */
#include <math.h>
#include <string.h>
#include <node_api.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#ifdef __linux__
#include <sys/mman.h>
#endif

static inline float dot(const float *w, const float *x, int n) {
  float val = 0.0f;
  for (int j = 0; j < n; j++) val += w[j] * x[j];
  return val;
}

/* out[i] = sum_j w[i*stride + j] * x[j], i < rows, j < cols */
static void matvec(float *out, const float *w, int stride, const float *x, int rows, int cols, int threads) {
  int i;
  #pragma omp parallel for private(i) num_threads(threads)
  for (i = 0; i < rows; i++) out[i] = dot(w + (size_t)i * stride, x, cols);
}

/*
 * q = Wq x, k = Wk x, v = Wv x (rows dim apart) as one parallel loop over all their rows: one
 * hand-off to the threads instead of three.
 */
static void qkv(float *q, float *k, float *v, const float *wq, const float *wk, const float *wv, const float *x,
                int dim, int q_rows, int kv_rows, int threads) {
  int r, rows = q_rows + 2 * kv_rows;
  #pragma omp parallel for private(r) num_threads(threads)
  for (r = 0; r < rows; r++) {
    if (r < q_rows) q[r] = dot(wq + (size_t)r * dim, x, dim);
    else if (r < q_rows + kv_rows) k[r - q_rows] = dot(wk + (size_t)(r - q_rows) * dim, x, dim);
    else v[r - q_rows - kv_rows] = dot(wv + (size_t)(r - q_rows - kv_rows) * dim, x, dim);
  }
}

/*
 * out = W2 (silu(W1 x) * W3 x), run.c's SwiGLU in float32, both halves in one parallel region (the
 * second loop starts after the first one's barrier). hb (hidden,) is scratch.
 */
static void ffn(float *out, float *hb, const float *w1, const float *w3, const float *w2, const float *x,
                int dim, int hidden, int threads) {
  #pragma omp parallel num_threads(threads)
  {
    int i;
    #pragma omp for
    for (i = 0; i < hidden; i++) {
      float val = dot(w1 + (size_t)i * dim, x, dim);
      val *= (1.0f / (1.0f + expf(-val)));
      hb[i] = val * dot(w3 + (size_t)i * dim, x, dim);
    }
    #pragma omp for
    for (i = 0; i < dim; i++) out[i] = dot(w2 + (size_t)i * hidden, hb, hidden);
  }
}

/*
 * Scores of one query against keys 0..last (rows kv_dim apart), times scale. With AVX2 four keys
 * at a time: the query stays in registers and one horizontal reduction serves four dots, where a
 * dot at a time spent as long reducing as multiplying (head size 64).
 */
static void scores_of(float *sc, const float *qh, const float *kc, size_t kv_dim, int hs, int last, float scale) {
  int t = 0;
#ifdef __AVX2__
  if (hs % 8 == 0) {
    for (; t + 3 <= last; t += 4) {
      const float *k0 = kc + (size_t)t * kv_dim, *k1 = k0 + kv_dim, *k2 = k1 + kv_dim, *k3 = k2 + kv_dim;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
      for (int i = 0; i < hs; i += 8) {
        const __m256 q = _mm256_loadu_ps(qh + i);
        a0 = _mm256_fmadd_ps(q, _mm256_loadu_ps(k0 + i), a0);
        a1 = _mm256_fmadd_ps(q, _mm256_loadu_ps(k1 + i), a1);
        a2 = _mm256_fmadd_ps(q, _mm256_loadu_ps(k2 + i), a2);
        a3 = _mm256_fmadd_ps(q, _mm256_loadu_ps(k3 + i), a3);
      }
      /* hadd twice leaves each half holding the four partial sums in order; add the halves */
      const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
      const __m128 sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
      _mm_storeu_ps(sc + t, _mm_mul_ps(sums, _mm_set1_ps(scale)));
    }
  }
#endif
  for (; t <= last; t++) sc[t] = dot(qh, kc + (size_t)t * kv_dim, hs) * scale;
}

/*
 * out = sum over t <= last of w[t] * v_t (rows kv_dim apart). With AVX2, 32 outputs at a time held
 * in registers across every t, rather than loaded and stored once per position.
 */
static void weighted_values(float *out, const float *w, const float *vc, size_t kv_dim, int hs, int last) {
  int j = 0;
#ifdef __AVX2__
  for (; j + 32 <= hs; j += 32) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int t = 0; t <= last; t++) {
      const float *v = vc + (size_t)t * kv_dim + j;
      const __m256 a = _mm256_set1_ps(w[t]);
      a0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(v), a0);
      a1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(v + 8), a1);
      a2 = _mm256_fmadd_ps(a, _mm256_loadu_ps(v + 16), a2);
      a3 = _mm256_fmadd_ps(a, _mm256_loadu_ps(v + 24), a3);
    }
    _mm256_storeu_ps(out + j, a0);
    _mm256_storeu_ps(out + j + 8, a1);
    _mm256_storeu_ps(out + j + 16, a2);
    _mm256_storeu_ps(out + j + 24, a3);
  }
#endif
  if (j == hs) return;
  memset(out + j, 0, (hs - j) * sizeof(float));
  for (int t = 0; t <= last; t++) {
    const float *v = vc + (size_t)t * kv_dim;
    for (int i = j; i < hs; i++) out[i] += w[t] * v[i];
  }
}

/*
 * Causal attention of heads [0, n_heads) for n_tokens queries at positions pos0.. over one layer's
 * cache: scores q.k/sqrt(hs) for positions 0..pos, softmax, weighted sum of v into att. Query head
 * h reads kv head h / kv_mul; q and att hold n_tokens rows of n_heads * hs. Threads split heads and
 * each walks its head's queries in turn, so that head's keys and values stay in its core's cache
 * through a whole prompt chunk. scores: (n_heads, positions) scratch.
 */
/* head h reads kv head (head_off + h) / kv_mul: a ring member's heads may start inside a kv group */
static void attend(float *att, float *scores, const float *q, const float *kc, const float *vc,
                   int n_heads, int hs, int kv_dim, int kv_mul, int positions, int pos0, int n_tokens, int head_off, int threads) {
  int h;
  const float scale = 1.0f / sqrtf(hs);
  #pragma omp parallel for private(h) num_threads(threads)
  for (h = 0; h < n_heads; h++) {
    float *sc = scores + (size_t)h * positions;
    int kv_at = ((head_off + h) / kv_mul) * hs;
    for (int i = 0; i < n_tokens; i++) {
      const int pos = pos0 + i;
      const float *qh = q + ((size_t)i * n_heads + h) * hs;
      scores_of(sc, qh, kc + kv_at, kv_dim, hs, pos, scale);
      float max_val = sc[0];
      #pragma omp simd reduction(max:max_val)
      for (int t = 1; t <= pos; t++) max_val = sc[t] > max_val ? sc[t] : max_val;
      float sum = 0.0f;
      #pragma omp simd reduction(+:sum)
      for (int t = 0; t <= pos; t++) { sc[t] = expf(sc[t] - max_val); sum += sc[t]; }
      const float inv = 1.0f / sum;
      #pragma omp simd
      for (int t = 0; t <= pos; t++) sc[t] *= inv;
      weighted_values(att + ((size_t)i * n_heads + h) * hs, sc, vc + kv_at, kv_dim, hs, pos);
    }
  }
}

/* gate = silu(gate) * up over n values: the GGUF pass's SwiGLU (vectorised expf; in JavaScript it cost a third of a ms per token) */
static void swiglu(float *gate, const float *up, int n) {
  #pragma omp simd
  for (int i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* The float data of a Float32Array argument, and its length in floats. */
static float *floats(napi_env env, napi_value v, size_t *length) {
  napi_typedarray_type type;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, length, &data, NULL, NULL) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "expected a Float32Array");
    return NULL;
  }
  return data;
}

static int ints(napi_env env, napi_value *argv, int from, int n, int *out) {
  for (int i = 0; i < n; i++) {
    if (napi_get_value_int32(env, argv[from + i], &out[i]) != napi_ok || out[i] < 0) {
      napi_throw_type_error(env, NULL, "expected a non-negative integer");
      return 0;
    }
  }
  return 1;
}

/* Does a rows x cols block, rows stride apart, fit a view of n floats? */
static int fits(size_t n, int rows, int stride, int cols) {
  return rows == 0 || (cols <= stride && n >= (size_t)(rows - 1) * stride + cols);
}

/* matvec(out, w, stride, x, rows, cols, threads): bounds are checked here, so a bad call throws instead of reading past a view */
static napi_value js_matvec(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 7) { napi_throw_type_error(env, NULL, "matvec(out, w, stride, x, rows, cols, threads)"); return NULL; }
  size_t n_out, n_w, n_x;
  int a[1], b[3];
  float *out = floats(env, argv[0], &n_out), *w = out ? floats(env, argv[1], &n_w) : NULL;
  float *x = w ? floats(env, argv[3], &n_x) : NULL;
  if (!x || !ints(env, argv, 2, 1, a) || !ints(env, argv, 4, 3, b)) return NULL;
  int stride = a[0], rows = b[0], cols = b[1], threads = b[2] < 1 ? 1 : b[2];
  if (rows == 0) return NULL;
  if (n_out < (size_t)rows || n_x < (size_t)cols || !fits(n_w, rows, stride, cols)) {
    napi_throw_range_error(env, NULL, "matvec: a view is smaller than rows x cols needs");
    return NULL;
  }
  matvec(out, w, stride, x, rows, cols, threads);
  return NULL;
}

/* qkv(q, k, v, wq, wk, wv, x, dim, qRows, kvRows, threads) */
static napi_value js_qkv(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 11) { napi_throw_type_error(env, NULL, "qkv(q, k, v, wq, wk, wv, x, dim, qRows, kvRows, threads)"); return NULL; }
  size_t n[7];
  float *p[7];
  for (int i = 0; i < 7; i++) if (!(p[i] = floats(env, argv[i], &n[i]))) return NULL;
  int v[4];
  if (!ints(env, argv, 7, 4, v)) return NULL;
  int dim = v[0], q_rows = v[1], kv_rows = v[2], threads = v[3] < 1 ? 1 : v[3];
  if (n[0] < (size_t)q_rows || n[1] < (size_t)kv_rows || n[2] < (size_t)kv_rows || n[6] < (size_t)dim ||
      !fits(n[3], q_rows, dim, dim) || !fits(n[4], kv_rows, dim, dim) || !fits(n[5], kv_rows, dim, dim)) {
    napi_throw_range_error(env, NULL, "qkv: a view is smaller than the rows need");
    return NULL;
  }
  qkv(p[0], p[1], p[2], p[3], p[4], p[5], p[6], dim, q_rows, kv_rows, threads);
  return NULL;
}

/* ffn(out, hb, w1, w3, w2, x, dim, hidden, threads) */
static napi_value js_ffn(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 9) { napi_throw_type_error(env, NULL, "ffn(out, hb, w1, w3, w2, x, dim, hidden, threads)"); return NULL; }
  size_t n[6];
  float *p[6];
  for (int i = 0; i < 6; i++) if (!(p[i] = floats(env, argv[i], &n[i]))) return NULL;
  int v[3];
  if (!ints(env, argv, 6, 3, v)) return NULL;
  int dim = v[0], hidden = v[1], threads = v[2] < 1 ? 1 : v[2];
  if (n[0] < (size_t)dim || n[1] < (size_t)hidden || n[5] < (size_t)dim ||
      !fits(n[2], hidden, dim, dim) || !fits(n[3], hidden, dim, dim) || !fits(n[4], dim, hidden, hidden)) {
    napi_throw_range_error(env, NULL, "ffn: a view is smaller than the rows need");
    return NULL;
  }
  ffn(p[0], p[1], p[2], p[3], p[4], p[5], dim, hidden, threads);
  return NULL;
}

/* attend(att, scores, q, keyCache, valueCache, nHeads, headSize, kvDim, kvMul, positions, pos0, nTokens, headOffset, threads), caches at this layer */
static napi_value js_attend(napi_env env, napi_callback_info info) {
  size_t argc = 14;
  napi_value argv[14];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 14) { napi_throw_type_error(env, NULL, "attend(att, scores, q, kc, vc, nHeads, hs, kvDim, kvMul, positions, pos0, nTokens, headOffset, threads)"); return NULL; }
  size_t n[5];
  float *p[5];
  for (int i = 0; i < 5; i++) if (!(p[i] = floats(env, argv[i], &n[i]))) return NULL;
  int v[9];
  if (!ints(env, argv, 5, 9, v)) return NULL;
  int n_heads = v[0], hs = v[1], kv_dim = v[2], kv_mul = v[3], positions = v[4], pos0 = v[5], n_tokens = v[6], head_off = v[7], threads = v[8] < 1 ? 1 : v[8];
  if (n_heads == 0 || n_tokens == 0) return NULL;
  const int last = pos0 + n_tokens; /* positions 0..last-1 are read */
  if (kv_mul == 0 || last > positions || last < pos0 || n[0] < (size_t)n_tokens * n_heads * hs || n[1] < (size_t)n_heads * positions ||
      n[2] < (size_t)n_tokens * n_heads * hs || (head_off + n_heads - 1) / kv_mul * hs + hs > kv_dim || n[3] < (size_t)last * kv_dim || n[4] < (size_t)last * kv_dim) {
    napi_throw_range_error(env, NULL, "attend: a view is smaller than the heads and positions need");
    return NULL;
  }
  attend(p[0], p[1], p[2], p[3], p[4], n_heads, hs, kv_dim, kv_mul, positions, pos0, n_tokens, head_off, threads);
  return NULL;
}

/* swiglu(gate, up, n) */
static napi_value js_swiglu(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 3) { napi_throw_type_error(env, NULL, "swiglu(gate, up, n)"); return NULL; }
  size_t n_gate, n_up;
  int n[1];
  float *gate = floats(env, argv[0], &n_gate), *up = gate ? floats(env, argv[1], &n_up) : NULL;
  if (!up || !ints(env, argv, 2, 1, n)) return NULL;
  if (n_gate < (size_t)n[0] || n_up < (size_t)n[0]) { napi_throw_range_error(env, NULL, "swiglu: a view is shorter than n"); return NULL; }
  swiglu(gate, up, n[0]);
  return NULL;
}

/*
 * adviseHugePages(bytes): ask Linux to back a large, not yet touched buffer with 2 MiB pages. A
 * token streams every weight once, and with 4 KiB pages the TLB misses cost about 15 % of the
 * bandwidth here. Best effort: nothing happens elsewhere or when transparent huge pages are off.
 */
static napi_value js_advise_huge_pages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (argc != 1 || napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "adviseHugePages(Uint8Array)");
    return NULL;
  }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const size_t huge = 2u << 20;
  size_t start = ((size_t)data + huge - 1) & ~(huge - 1), end = ((size_t)data + length) & ~(huge - 1);
  if (end > start) madvise((void *)start, end - start, MADV_HUGEPAGE);
#endif
  return NULL;
}

/* the quantized matrix products (quant.c) */
extern void mesh_register_quant(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "matvec", NULL, js_matvec, NULL, NULL, NULL, napi_default, NULL },
    { "qkv", NULL, js_qkv, NULL, NULL, NULL, napi_default, NULL },
    { "ffn", NULL, js_ffn, NULL, NULL, NULL, napi_default, NULL },
    { "attend", NULL, js_attend, NULL, NULL, NULL, napi_default, NULL },
    { "adviseHugePages", NULL, js_advise_huge_pages, NULL, NULL, NULL, napi_default, NULL },
    { "swiglu", NULL, js_swiglu, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, 6, props);
  mesh_register_quant(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
