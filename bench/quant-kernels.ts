/**
 * The quantized matrix products of native/quant.c alone, per weight type, on the matrix shapes of
 * a 110M-parameter llama (dim 768, hidden 2048, vocabulary 32000): one token (generation: GB/s of
 * weights streamed, over enough distinct matrices that they come from memory) and 128 tokens
 * (a prompt chunk: GFLOP/s, 2 per multiply-add), on 1 and 2 threads. The last columns add the
 * shapes up to one token of the whole model (attention left out), to set beside llama-bench's
 * tg and pp figures.
 *
 *   node scripts/build-native.mjs && node --import tsx bench/quant-kernels.ts [--types Q4_0,Q4_K] [--packed]
 *
 * --packed repacks the weights as the engine does at load (interleaved rows, where the type has a
 * packed form) and times those kernels instead.
 */
import os from 'node:os'
import { parseArgs } from 'node:util'
import { nativeKernels, onHugePages, PACKED_TYPE } from '../src/inference/native.js'
import { blockType, rowBytes } from '../src/inference/quant/block-types.js'

const ALL = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K']
const IDS: Record<string, number> = { F32: 0, F16: 1, BF16: 30, Q8_0: 8, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q4_K: 12, Q5_K: 13, Q6_K: 14 }
const { values } = parseArgs({ options: { types: { type: 'string', default: ALL.join(',') }, packed: { type: 'boolean', default: false } } })
const TYPES = (values.types ?? '').split(',')

const k = nativeKernels()
if (typeof k === 'string') throw new Error(k)

// [rows, cols, matrices of this shape per token of the model]
const SHAPES: Array<[number, number, number]> = [[768, 768, 48], [2048, 768, 24], [768, 2048, 12], [32000, 768, 1]]
const PROMPT = 128
const STREAM_BYTES = 128 << 20 // well past the L3 cache

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

/** Median seconds per call of `f` cycling over `n` inputs, 5 timed rounds of at least 20 calls and 0.1 s after a warm-up. */
function time (n: number, f: (i: number) => void): number {
  for (let i = 0; i < n; i++) f(i)
  const rounds: number[] = []
  for (let r = 0; r < 5; r++) {
    let calls = 0
    const t0 = performance.now()
    while (calls < Math.max(n, 20) || performance.now() - t0 < 100) f(calls++ % n)
    rounds.push((performance.now() - t0) / 1000 / calls)
  }
  return median(rounds)
}

/** Weight bytes of a type: random codes; float types get modest values (random bits would include denormals). */
function weights (type: number, bytes: number): Uint8Array {
  const w = onHugePages(new Uint8Array(bytes))
  const view = new DataView(w.buffer)
  const rand16 = (): number => Math.floor(Math.random() * 65536)
  if (type === 0) for (let i = 0; i + 4 <= bytes; i += 4) view.setFloat32(i, Math.random() - 0.5, true)
  else if (type === 1) for (let i = 0; i + 2 <= bytes; i += 2) view.setUint16(i, 0x3000 | (rand16() & 0x8fff), true)
  else if (type === 30) for (let i = 0; i + 2 <= bytes; i += 2) view.setUint16(i, 0x3e00 | (rand16() & 0x80ff), true)
  else for (let i = 0; i < bytes; i++) w[i] = rand16() & 255
  return w
}

console.log(`machine: ${os.cpus()[0].model}, ${os.cpus().length} cores; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
console.log(`| type | W shape | 1 token, 1 thread | 1 token, 2 threads | ${PROMPT} tokens, 1 thread | ${PROMPT} tokens, 2 threads |`)
console.log('| --- | --- | ---: | ---: | ---: | ---: |')
const model: Record<string, [number, number, number, number]> = {}
for (const name of TYPES) {
  const type = IDS[name]
  if (type === undefined || blockType(type) === undefined) throw new Error(`unknown type ${name}`)
  const total: [number, number, number, number] = [0, 0, 0, 0] // seconds per model token: tg 1t, tg 2t, pp 1t, pp 2t
  for (const [rows, cols, perToken] of SHAPES) {
    const rb = rowBytes(type, cols) ?? 0
    const bytes = rows * rb
    const n = Math.max(1, Math.ceil(STREAM_BYTES / bytes))
    const one = weights(type, bytes)
    const id = values.packed === true && k.qrepack(one, type, rows, cols) ? type | PACKED_TYPE : type
    const all = onHugePages(new Uint8Array(n * bytes))
    for (let i = 0; i < n; i++) all.set(one, i * bytes)
    const mats = Array.from({ length: n }, (_, i) => all.subarray(i * bytes, (i + 1) * bytes))
    const x = Float32Array.from({ length: PROMPT * cols }, () => Math.random() * 2 - 1)
    const out = new Float32Array(PROMPT * rows)
    const cells: string[] = []
    for (const [c, threads] of [1, 2].entries()) {
      const s = time(n, (i) => { k.qmatmul(out, mats[i], id, rows, cols, x, 1, threads) })
      total[c] += s * perToken
      cells.push(`${(bytes / s / 1e9).toFixed(1)} GB/s`)
    }
    for (const [c, threads] of [1, 2].entries()) {
      const s = time(1, () => { k.qmatmul(out, one, id, rows, cols, x, PROMPT, threads) })
      total[2 + c] += s * perToken / PROMPT
      cells.push(`${(2 * rows * cols * PROMPT / s / 1e9).toFixed(0)} GFLOP/s`)
    }
    console.log(`| ${name}${id !== type ? ' packed' : ''} | ${rows}×${cols} | ${cells.join(' | ')} |`)
  }
  model[name] = total
}
console.log('\nwhole 110M model, matrix products only (tokens/s): | type | tg 1 thread | tg 2 threads | pp 1 thread | pp 2 threads |')
for (const [name, t] of Object.entries(model)) console.log(`| ${name} | ${t.map((s) => (1 / s).toFixed(0)).join(' | ')} |`)
console.log(`load average at end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
