/**
 * GGUF inference on one device, mesh beside llama.cpp's own llama-bench on the same files and
 * thread counts, interleaved: token generation (tg128), prompt processing (pp512), time to first
 * token for a 512-token prompt, load time and peak RSS. Medians of --runs rounds.
 *
 *   ../shared/tools/bench-models.sh stories110m llama3-1b      # once: builds llama-bench, writes the GGUFs
 *   npm run build && node --import tsx bench/gguf.ts [--runs 3] [--models stories110m.q4_k_m,...] [--threads 1,2]
 *
 * Models are looked up in MESH_BENCH_CACHE (default ~/.cache/mesh-bench)/models; llama-bench in
 * its llama.cpp/build/bin. Speed is never asserted; this prints figures for bench/README.md.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs, promisify } from 'node:util'

const run = promisify(execFile)
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    models: { type: 'string', default: 'stories110m.q8_0,stories110m.q4_0,stories110m.q4_k_m' },
    threads: { type: 'string', default: '1,2' },
    'no-llama-cpp': { type: 'boolean', default: false }
  }
})
const CACHE = process.env.MESH_BENCH_CACHE ?? path.join(os.homedir(), '.cache', 'mesh-bench')
const LLAMA_BENCH = path.join(process.env.LLAMA_CPP_DIR ?? path.join(CACHE, 'llama.cpp'), 'build', 'bin', 'llama-bench')
const MESH = 'dist/cli/mesh.js'
const GEN_TOKENS = 128
const PROMPT_TOKENS = 512
const TIME = '/usr/bin/time' // GNU time: peak RSS of llama-bench (%M, KiB)

interface Figures { tg: number, pp: number, ttftMs: number, loadMs: number, rssMiB: number }
const median = (xs: number[]): number => { const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.floor(s.length / 2)] }

/** A prompt of exactly `n` tokens for this model: mesh counts them (--json) and we trim words until it fits. */
async function promptOf (model: string, n: number): Promise<string> {
  let words = n
  for (;;) {
    const text = Array.from({ length: words }, (_, i) => ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog'][i % 8]).join(' ')
    const { stdout } = await run('node', [MESH, 'inference', '--local', '--json', '--model', model, '--prompt', text, '--max-tokens', '1', '--temperature', '0', '--ignore-eog'], { maxBuffer: 1 << 26 })
    const got = (JSON.parse(stdout) as { prompt_token_ids: number[] }).prompt_token_ids.length
    if (got <= n) return text
    words -= got - n
  }
}

async function mesh (model: string, threads: number, longPrompt: string): Promise<Figures> {
  const once = async (prompt: string, maxTokens: number): Promise<Record<string, number>> => {
    const { stdout } = await run('node', [MESH, 'inference', '--local', '--json', '--model', model, '--prompt', prompt, '--max-tokens', String(maxTokens),
      '--temperature', '0', '--ignore-eog', '--threads', String(threads), '--engine', 'native'], { maxBuffer: 1 << 26 })
    return JSON.parse(stdout) as Record<string, number>
  }
  const tg = await once('Once upon a time', GEN_TOKENS)
  const pp = await once(longPrompt, 1)
  return { tg: tg.tokens_per_second, pp: pp.prompt_tokens_per_second, ttftMs: pp.time_to_first_token_ms, loadMs: tg.load_ms, rssMiB: Math.max(tg.peak_rss_bytes, pp.peak_rss_bytes) / (1 << 20) }
}

async function llamaCpp (model: string, threads: number): Promise<Figures> {
  const timed = existsSync(TIME)
  const cmd = timed ? TIME : LLAMA_BENCH
  const args = [...(timed ? ['-f', '%M', LLAMA_BENCH] : []), '-m', model, '-p', String(PROMPT_TOKENS), '-n', String(GEN_TOKENS), '-t', String(threads), '-r', '1', '-o', 'json']
  const { stdout, stderr } = await run(cmd, args, { maxBuffer: 1 << 26 })
  const rows = JSON.parse(stdout) as Array<{ n_prompt: number, n_gen: number, avg_ts: number }>
  const rssKiB = timed ? Number(stderr.trim().split('\n').pop()) : NaN
  return {
    tg: rows.find((r) => r.n_gen > 0)?.avg_ts ?? NaN,
    pp: rows.find((r) => r.n_prompt > 0)?.avg_ts ?? NaN,
    ttftMs: NaN,
    loadMs: NaN,
    rssMiB: rssKiB / 1024
  }
}

const runs = Number(values.runs)
const threadCounts = (values.threads ?? '1,2').split(',').map(Number)
console.log(`machine: ${os.cpus()[0].model}, ${os.cpus().length} cores, Node ${process.version}; load average at start ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
const rows: string[] = []
for (const name of (values.models ?? '').split(',')) {
  const model = path.join(CACHE, 'models', `${name}.gguf`)
  if (!existsSync(model)) { console.log(`${model} is missing: run ../shared/tools/bench-models.sh first`); continue }
  const longPrompt = await promptOf(model, PROMPT_TOKENS)
  const useLlama = !values['no-llama-cpp'] && existsSync(LLAMA_BENCH)
  for (const threads of threadCounts) {
    const ours: Figures[] = []
    const theirs: Figures[] = []
    // interleaved rounds: a burst of load from elsewhere hits both alike
    for (let r = 0; r < runs; r++) {
      ours.push(await mesh(model, threads, longPrompt))
      if (useLlama) theirs.push(await llamaCpp(model, threads))
    }
    const m = (xs: Figures[], f: (x: Figures) => number, digits: number): string => { const v = median(xs.map(f)); return Number.isNaN(v) ? '' : v.toFixed(digits) }
    const ratio = (a: number, b: number): string => Number.isNaN(a) || Number.isNaN(b) ? '' : `${(a / b).toFixed(2)}x`
    const row = `| ${name} | ${threads} | ${m(ours, (x) => x.tg, 1)} | ${m(theirs, (x) => x.tg, 1)} | ${ratio(median(ours.map((x) => x.tg)), median(theirs.map((x) => x.tg)))} | ` +
      `${m(ours, (x) => x.pp, 0)} | ${m(theirs, (x) => x.pp, 0)} | ${ratio(median(ours.map((x) => x.pp)), median(theirs.map((x) => x.pp)))} | ` +
      `${m(ours, (x) => x.ttftMs, 0)} | ${m(ours, (x) => x.loadMs, 0)} | ${m(ours, (x) => x.rssMiB, 0)} | ${m(theirs, (x) => x.rssMiB, 0)} |`
    console.log(row)
    rows.push(row)
  }
}
console.log(`load average at end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`)
console.log(`| model | threads | mesh tg${GEN_TOKENS} tok/s | llama.cpp tg${GEN_TOKENS} | mesh/llama.cpp | mesh pp${PROMPT_TOKENS} tok/s | llama.cpp pp${PROMPT_TOKENS} | mesh/llama.cpp | mesh TTFT ${PROMPT_TOKENS} ms | mesh load ms | mesh peak RSS MiB | llama-bench peak RSS MiB |`)
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
console.log(rows.join('\n'))
