/**
 * The part that decides speed, alone: one matrix-vector product y = W·x per engine, over enough
 * distinct matrices that the weights stream from memory as they do in a real forward pass (a
 * single matrix would sit in cache and flatter every engine). Also the memory bandwidth a
 * single-row product reaches, the ceiling for a memory-bound model.
 *
 *   npm run build && node --import tsx bench/matvec.ts
 */
import os from 'node:os'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'
import { matvec } from '../src/inference/kernels.js'
import { nativeKernels, onHugePages } from '../src/inference/native.js'
import { encodeModel } from '../src/inference/onnx-graph.js'
import { instantiateMatvec } from '../src/inference/wasm-matvec.js'
import { parallelMatvec } from '../src/inference/wasm-threads.js'

const { values } = parseArgs({ options: { engines: { type: 'string', default: 'ts,wasm,wasm(2),native(1),native(2),onnx(1),onnx(2)' } } })
const ENGINES = new Set((values.engines ?? '').split(','))

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

/** Median µs per call of `f` cycling over `n` matrices, 5 timed rounds after a warm-up. */
async function time (n: number, f: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < n; i++) await f(i)
  const rounds: number[] = []
  for (let r = 0; r < 5; r++) {
    const calls = Math.max(n, 50)
    const t0 = performance.now()
    for (let i = 0; i < calls; i++) await f(i % n)
    rounds.push((performance.now() - t0) / calls * 1000)
  }
  return median(rounds)
}

const PAGE = 65536
async function bench (rows: number, cols: number, totalBytes: number): Promise<void> {
  const n = Math.max(1, Math.round(totalBytes / (rows * cols * 4)))
  const bytes = rows * cols * 4
  const pages = Math.ceil((n * bytes + (cols + rows) * 4 + 64) / PAGE)
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true })
  onHugePages(new Uint8Array(memory.buffer)) // as the engines load weights
  const all = new Float32Array(memory.buffer)
  for (let i = 0; i < n * rows * cols; i++) all[i] = Math.random() - 0.5
  const xAt = n * bytes; const outAt = xAt + cols * 4
  const x = new Float32Array(memory.buffer, xAt, cols).map(() => Math.random())
  const y = new Float32Array(rows)
  const wasm = instantiateMatvec(memory)
  const mats = Array.from({ length: n }, (_, i) => all.subarray(i * rows * cols, (i + 1) * rows * cols))
  const results: Array<[string, number]> = []
  if (ENGINES.has('ts') && rows * cols <= 1 << 21) results.push(['ts', await time(n, (i) => { matvec(y, mats[i], 0, cols, x, rows, cols) })])
  if (ENGINES.has('wasm')) results.push(['wasm', await time(n, (i) => { wasm(outAt, i * bytes, cols * 4, xAt, rows, cols) })])
  if (ENGINES.has('wasm(2)')) {
    // every product split over both threads, however small, to show where splitting starts to pay
    const pool = await parallelMatvec(memory, 2, { minParallelWeights: 0 })
    results.push(['wasm(2)', await time(n, (i) => { pool.run([{ out: outAt, w: i * bytes, strideBytes: cols * 4, x: xAt, rows, cols }]) })])
    await pool.close()
  }
  const native = nativeKernels()
  if (typeof native !== 'string') {
    const xv = new Float32Array(memory.buffer, xAt, cols)
    for (const threads of [1, 2].filter((t) => ENGINES.has(`native(${t})`))) {
      results.push([`native(${threads})`, await time(n, (i) => { native.matvec(y, mats[i], cols, xv, rows, cols, threads) })])
    }
  }
  for (const threads of [1, 2].filter((t) => ENGINES.has(`onnx(${t})`))) {
    const s = await ort.InferenceSession.create(encodeModel({
      inputs: [{ name: 'x', dims: [1, cols] }, { name: 'w', dims: [rows, cols] }],
      outputs: [{ name: 'y', dims: [1, rows] }],
      initializers: [],
      nodes: [{ op: 'Gemm', inputs: ['x', 'w'], outputs: ['y'], ints: { transB: 1 } }]
    }), { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } } })
    const xt = new ort.Tensor('float32', x, [1, cols])
    const wt = mats.map((m) => new ort.Tensor('float32', m, [rows, cols]))
    results.push([`onnx(${threads})`, await time(n, async (i) => await s.run({ x: xt, w: wt[i] }))])
    await s.release()
  }
  console.log(`| ${rows}×${cols} | ${n} | ${results.map(([e, us]) => `${e} ${us.toFixed(1)} µs (${(bytes / us / 1000).toFixed(1)} GB/s)`).join(' · ')} |`)
}

console.log(`machine: ${os.cpus()[0].model}, ${os.cpus().length} cores; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
console.log('| W shape | matrices cycled | median per call (weight bytes / time) |\n| --- | ---: | --- |')
for (const [rows, cols] of [[64, 64], [172, 64], [288, 288], [768, 288], [768, 768], [2048, 768], [768, 2048], [32000, 288], [32000, 768]]) {
  await bench(rows, cols, 256 << 20)
}
console.log('memory bandwidth, single-row product over 1 GiB of weights:')
await bench(16384, 16384, 1 << 30)
console.log(`load average at end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
