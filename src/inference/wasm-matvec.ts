/**
 * A WebAssembly SIMD matrix-vector kernel, assembled here byte by byte (no wat toolchain offline).
 * V8 compiles f32x4 operations to SSE/AVX instructions, which plain JavaScript loops never get:
 * four products per instruction, sixteen in flight per row.
 *
 * matvec(out, w, rowStrideBytes, x, rows, cols), all pointers byte offsets into the imported memory:
 *   out[i] = Σ_j w[i·stride + j]·x[j], with float32 lane sums (16 at a time, then 4, then 1).
 */

const I32 = 0x7f
const F32 = 0x7d
const V128 = 0x7b

// parameters, then locals, by index
const OUT = 0; const W = 1; const STRIDE = 2; const X = 3; const ROWS = 4; const COLS = 5
const I = 6; const J = 7; const R = 8; const N16 = 9; const N4 = 10
const A = [11, 12, 13, 14] // v128 accumulators
const S = 15 // f32 row sum

const uleb = (n: number): number[] => {
  const out: number[] = []
  do {
    let b = n & 0x7f
    n >>>= 7
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}
const sleb = (n: number): number[] => {
  const out: number[] = []
  for (;;) {
    const b = n & 0x7f
    n >>= 7
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b]
    out.push(b | 0x80)
  }
}

const get = (l: number): number[] => [0x20, ...uleb(l)]
const set = (l: number): number[] => [0x21, ...uleb(l)]
const i32 = (v: number): number[] => [0x41, ...sleb(v)]
const add = [0x6a]; const mul = [0x6c]; const shl = [0x74]; const and = [0x71]; const geU = [0x4f]
const f32Add = [0x92]; const f32Mul = [0x94]
const f32Load = [0x2a, 2, 0]
const f32Store = [0x38, 2, 0]
const v128Load = (offset: number): number[] => [0xfd, 0x00, 2, ...uleb(offset)]
const v128Zero = [0xfd, 0x0c, ...new Array<number>(16).fill(0)]
const f32x4Add = [0xfd, 0xe4, 0x01]
const f32x4Mul = [0xfd, 0xe6, 0x01]
const lane = (k: number): number[] => [0xfd, 0x1f, k]
const block = (...body: number[][]): number[] => [0x02, 0x40, ...body.flat(), 0x0b]
const loop = (...body: number[][]): number[] => [0x03, 0x40, ...body.flat(), 0x0b]
const brIf = (depth: number): number[] => [0x0d, depth]
const br = (depth: number): number[] => [0x0c, depth]

/** byte address of element j of a row starting at `base` */
const at = (base: number): number[] => [...get(base), ...get(J), ...i32(2), ...shl, ...add]
/** while (j < limit) { body; j += step } */
const forJ = (limit: number, step: number, body: number[]): number[] =>
  block(loop(get(J), get(limit), geU, brIf(1), body, get(J), i32(step), add, set(J), br(0)))
const accumulate = (acc: number, offset: number): number[] =>
  [...get(acc), ...at(R), ...v128Load(offset), ...at(X), ...v128Load(offset), ...f32x4Mul, ...f32x4Add, ...set(acc)]

const body = [
  ...get(COLS), ...i32(~15), ...and, ...set(N16),
  ...get(COLS), ...i32(~3), ...and, ...set(N4),
  ...i32(0), ...set(I),
  ...block(loop(
    get(I), get(ROWS), geU, brIf(1),
    get(W), get(I), get(STRIDE), mul, add, set(R),
    ...A.map((a) => [...v128Zero, ...set(a)]),
    i32(0), set(J),
    forJ(N16, 16, A.flatMap((a, k) => accumulate(a, 16 * k))),
    forJ(N4, 4, accumulate(A[0], 0)),
    get(A[0]), get(A[1]), f32x4Add, get(A[2]), get(A[3]), f32x4Add, f32x4Add, set(A[0]),
    get(A[0]), lane(0), get(A[0]), lane(1), f32Add, get(A[0]), lane(2), f32Add, get(A[0]), lane(3), f32Add, set(S),
    forJ(COLS, 1, [...get(S), ...at(R), ...f32Load, ...at(X), ...f32Load, ...f32Mul, ...f32Add, ...set(S)]),
    get(OUT), get(I), i32(2), shl, add, get(S), f32Store,
    get(I), i32(1), add, set(I),
    br(0)
  )),
  0x0b
]

const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content]
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s)]
const locals = [3, 5, I32, 4, V128, 1, F32]
const func = [...locals, ...body]

const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, [1, 0x60, 6, I32, I32, I32, I32, I32, I32, 0]), // type 0: (i32 × 6) → ()
  // import env.memory: shared (flag 3, so worker threads can run the kernel on the same weights), 1 to 65536 pages
  ...section(2, [1, ...name('env'), ...name('memory'), 0x02, 0x03, 0x01, ...uleb(65536)]),
  ...section(3, [1, 0]), // function 0 has type 0
  ...section(7, [1, ...name('matvec'), 0x00, 0]), // export it
  ...section(10, [1, ...uleb(func.length), ...func])
])

export type WasmMatvec = (out: number, w: number, rowStrideBytes: number, x: number, rows: number, cols: number) => void

/** The compiled kernel; a worker thread receives it through workerData and instantiates it there. */
export const matvecModule = (): WebAssembly.Module => new WebAssembly.Module(MODULE)

/** Instantiate the kernel over a shared `memory` (synchronous: the module is a few hundred bytes). */
export function instantiateMatvec (memory: WebAssembly.Memory, module: WebAssembly.Module = matvecModule()): WasmMatvec {
  const instance = new WebAssembly.Instance(module, { env: { memory } })
  return instance.exports.matvec as WasmMatvec
}
