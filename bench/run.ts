/**
 * End-to-end inference benchmark: tokens/s, time to first token, load time and peak RSS of
 * `mesh inference --local` per shape, engine and thread count, each the median of several runs in
 * fresh processes, with llama2.c beside it when a binary is given.
 *
 *   npm run build && npm run bench -- [--runs 3] [--llama2c /tmp/llama2c/run] [--shapes stories260K,stories15M,stories110M]
 *
 * Larger shapes get random weights from `mesh model synth` in the OS temp directory (never in
 * the repository). Speed is never asserted anywhere; this prints figures for bench/README.md.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { parseArgs } from 'node:util'

const run = promisify(execFile)
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    llama2c: { type: 'string' },
    shapes: { type: 'string', default: 'stories260K,stories15M,stories110M' },
    engines: { type: 'string', default: 'ts:1,wasm:1,onnx:1,onnx:2,auto:1,auto:2' }
  }
})
const RUNS = Number(values.runs)
const MESH = 'dist/cli/mesh.js'
const LLAMA2_TOKENIZER = 'test/fixtures/llama2-tokenizer/tokenizer.bin'

interface Shape { name: string, model: string, tokenizer: string, tokens: number }
const shapes: Record<string, Shape> = {
  stories260K: { name: 'stories260K', model: 'models/stories260K/stories260K.bin', tokenizer: 'models/stories260K/tok512.bin', tokens: 256 },
  stories15M: { name: 'stories15M shape', model: path.join(os.tmpdir(), 'mesh-bench-stories15M.bin'), tokenizer: LLAMA2_TOKENIZER, tokens: 128 },
  stories110M: { name: 'stories110M shape', model: path.join(os.tmpdir(), 'mesh-bench-stories110M.bin'), tokenizer: LLAMA2_TOKENIZER, tokens: 64 }
}

interface Figures { tps: number, ttftMs: number, loadMs: number, rssMiB: number, engine: string }
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

async function mesh (shape: Shape, engine: string, threads: number): Promise<Figures> {
  const { stdout } = await run('node', [MESH, 'inference', '--local', '--json', '--model', shape.model, '--tokenizer', shape.tokenizer,
    '--max-tokens', String(shape.tokens), '--temperature', '0', '--engine', engine, '--threads', String(threads)], { maxBuffer: 1 << 26 })
  const r = JSON.parse(stdout) as { tokens_per_second: number, time_to_first_token_ms: number, load_ms: number, peak_rss_bytes: number, engine: string }
  return { tps: r.tokens_per_second, ttftMs: r.time_to_first_token_ms, loadMs: r.load_ms, rssMiB: r.peak_rss_bytes / (1 << 20), engine: r.engine }
}

async function llama2c (binary: string, shape: Shape, threads: number): Promise<number> {
  const { stdout } = await run(binary, [shape.model, String(shape.tokens)], { env: { ...process.env, OMP_NUM_THREADS: String(threads) } })
  return Number(stdout.trim())
}

/** One configuration: a mesh engine at a thread count, or the llama2.c binary. */
interface Config { shape: Shape, label: string, threads: number, measure: () => Promise<Figures> }

console.log(`machine: ${os.cpus()[0].model}, ${os.cpus().length} cores, Node ${process.version}; load average at start ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
const rows: string[] = []
for (const key of (values.shapes ?? '').split(',')) {
  const shape = shapes[key]
  if (!existsSync(shape.model)) await run('node', [MESH, 'model', 'synth', '--shape', key, '--out', shape.model])
  const configs: Config[] = (values.engines ?? '').split(',').map((spec) => {
    const [engine, t] = spec.split(':')
    return { shape, label: engine, threads: Number(t), measure: async () => await mesh(shape, engine, Number(t)) }
  })
  const binary = values.llama2c
  if (binary !== undefined) {
    for (const threads of [1, 2]) {
      configs.push({ shape, label: 'llama2.c', threads, measure: async () => ({ tps: await llama2c(binary, shape, threads), ttftMs: NaN, loadMs: NaN, rssMiB: NaN, engine: 'llama2.c run.c forward (gcc -Ofast -march=native -fopenmp)' }) })
    }
  }
  // rounds over all configurations, so a burst of load from other processes hits each of them alike
  const results = configs.map(() => [] as Figures[])
  for (let round = 0; round < RUNS; round++) {
    for (const [i, config] of configs.entries()) results[i].push(await config.measure())
  }
  for (const [i, config] of configs.entries()) {
    const r = results[i]
    const m = (f: (x: Figures) => number, digits: number): string => Number.isNaN(f(r[0])) ? '' : median(r.map(f)).toFixed(digits)
    const row = `| ${shape.name} | ${r[0].engine}${config.label === 'auto' ? ' (auto)' : ''} | ${config.threads} | ${m((x) => x.tps, 1)} | ${m((x) => x.ttftMs, 1)} | ${m((x) => x.loadMs, 0)} | ${m((x) => x.rssMiB, 0)} |`
    console.log(row)
    rows.push(row)
  }
}
console.log(`load average at end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`)
console.log('| shape | engine | threads | tok/s (median) | time to first token ms | load ms | peak RSS MiB |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |')
console.log(rows.join('\n'))
