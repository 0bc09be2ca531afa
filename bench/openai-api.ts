/**
 * The OpenAI-compatible API against `mesh inference` on the same ring: N agents on 127.0.0.1
 * (unicast beacons, real libp2p and tensor plane, one kernel thread each), agent 0 serving the API
 * and leading every job. Interleaved runs of the same greedy prompt: `mesh inference --json` (its
 * tokens/s after the first token, and time to first token, as the job measures them) and a
 * streamed POST /v1/completions read with node:http (time to the response headers, to the first
 * token's chunk, and tokens/s between the first and the last token's chunk, as a client sees
 * them). Medians; never asserted anywhere.
 *
 *   npm run build && node --import tsx bench/openai-api.ts [--members 2] [--runs 5] [--models stories260K,llama3-test.q4_k_m]
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { callAgent } from '../src/agent/api/client.js'
import type { RingReport } from '../src/agent/net/pool-ring.js'
import { killAgents, logOf, MESH_JS, startAgents } from '../test/helpers/agent-procs.js'
import { tempRoot, testPool } from '../test/helpers/pools.js'

const arg = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : fallback }
const n = Number(arg('members', '2'))
const runs = Number(arg('runs', '5'))
const shared = path.resolve(process.env.MESH_SHARED ?? '../shared')
const MODELS: Record<string, { file: string | undefined, tokens: number }> = {
  stories260K: { file: undefined, tokens: 256 }, // the bundled default
  'llama3-test.q4_k_m': { file: path.join(shared, 'models/gguf/llama3-test.q4_k_m.gguf'), tokens: 128 },
  'stories260K.q8_0': { file: path.join(shared, 'models/gguf/stories260K.q8_0.gguf'), tokens: 100 } // its context is 128
}
const PROMPT = 'Once upon a time'
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN }

async function freePort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve) => { s.listen(0, '127.0.0.1', () => { resolve() }) })
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => { s.close(() => { resolve() }) })
  return port
}

async function ringOf (homes: string[]): Promise<void> {
  const deadline = Date.now() + 120_000
  for (;;) {
    const reports = await Promise.all(homes.map(async (h) => (await callAgent<RingReport[]>(h, 'GET', '/v1/ring'))[0]))
    if (reports.every((r) => r?.converged === true && r.topology.members.length === homes.length)) return
    if (Date.now() > deadline) throw new Error(`no ring of ${homes.length} within 2 minutes`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

interface CliFigures { tps: number, ttftMs: number, tokens: number }
async function cli (home: string, tokens: number): Promise<CliFigures> {
  const { stdout } = await promisify(execFile)(process.execPath, [MESH_JS, 'inference', '--prompt', PROMPT, '--max-tokens', String(tokens), '--temperature', '0', '--json'],
    { env: { ...process.env, MESH_HOME: home }, timeout: 600_000 })
  const j = JSON.parse(stdout) as { tokens_per_second: number, time_to_first_token_ms: number, generated_tokens: number }
  return { tps: j.tokens_per_second, ttftMs: j.time_to_first_token_ms, tokens: j.generated_tokens }
}

interface ApiFigures { headersMs: number, firstTokenMs: number, tps: number, serverTps: number, tokens: number }
/** One streamed completion, timed from the client's side: chunks are whole SSE events of one token each. */
async function api (port: number, tokens: number): Promise<ApiFigures> {
  return await new Promise((resolve, reject) => {
    const t0 = performance.now()
    let headersAt = 0; let firstAt = 0; let lastAt = 0; let text = ''
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/completions', headers: { 'content-type': 'application/json' } }, (res) => {
      headersAt = performance.now()
      res.setEncoding('utf8')
      if (res.statusCode !== 200) { res.on('data', (c: string) => { reject(new Error(`the API answered ${res.statusCode ?? '?'}: ${c}`)) }); return }
      res.on('data', (c: string) => {
        const now = performance.now()
        text += c
        // a token's chunk carries non-empty text; the finish chunk has "text":""
        if (/"text":"(?:[^"\\]|\\.)+"/.test(c)) { if (firstAt === 0) firstAt = now; lastAt = now }
      })
      res.on('end', () => {
        const events = text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)) as { usage?: { completion_tokens: number } | null, timings?: { predicted_per_second: number } })
        const usage = events.find((e) => e.usage !== null && e.usage !== undefined)?.usage
        const timings = events.find((e) => e.timings !== undefined)?.timings
        const got = usage?.completion_tokens ?? 0
        resolve({ headersMs: headersAt - t0, firstTokenMs: firstAt - t0, tps: (got - 1) / ((lastAt - firstAt) / 1000), serverTps: timings?.predicted_per_second ?? NaN, tokens: got })
      })
    })
    req.on('error', reject)
    req.end(JSON.stringify({ prompt: PROMPT, max_tokens: tokens, temperature: 0, stream: true, stream_options: { include_usage: true } }))
  })
}

console.log(`machine: ${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, Node ${process.version}; load average at start ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
console.log(`${n} agents on 127.0.0.1, 1 kernel thread each; agent 0 serves the API and leads; prompt ${JSON.stringify(PROMPT)}, greedy; medians of ${runs} interleaved runs`)
console.log('| model | tokens | mesh inference tok/s | API stream tok/s (client) | API / inference | API timings tok/s | inference TTFT ms | API headers ms | API first token ms |')
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const name of arg('models', 'stories260K,llama3-test.q4_k_m').split(',')) {
  const m = MODELS[name]
  if (m === undefined) throw new Error(`unknown model ${name}; one of ${Object.keys(MODELS).join(', ')}`)
  const root = tempRoot()
  const homes = (() => { const p = testPool(root, Array.from({ length: n }, (_, i) => i === 0 ? 'admin' : `m${i}`)); return [p.admin, ...p.members].map((d) => d.home) })()
  const port = await freePort()
  fs.writeFileSync(path.join(homes[0] as string, 'agent.json'), JSON.stringify({ api: `127.0.0.1:${port}` }))
  const started: string[] = []
  try {
    await startAgents(homes, started, [...(m.file === undefined ? [] : ['--model', m.file]), '--threads', '1'])
    await ringOf(homes)
    // warm-up: each member loads its shard on the first job
    await cli(homes[0] as string, 8)
    await api(port, 8)
    const c: CliFigures[] = []
    const a: ApiFigures[] = []
    // pairs in alternating order, so a burst of load elsewhere hits both alike
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) { c.push(await cli(homes[0] as string, m.tokens)); a.push(await api(port, m.tokens)) } else { a.push(await api(port, m.tokens)); c.push(await cli(homes[0] as string, m.tokens)) }
    }
    const ct = median(c.map((x) => x.tps)); const at = median(a.map((x) => x.tps))
    console.log(`| ${name} | ${median(a.map((x) => x.tokens))} | ${ct.toFixed(1)} | ${at.toFixed(1)} | ${(100 * at / ct).toFixed(1)} % | ${median(a.map((x) => x.serverTps)).toFixed(1)} | ${median(c.map((x) => x.ttftMs)).toFixed(0)} | ${median(a.map((x) => x.headersMs)).toFixed(1)} | ${median(a.map((x) => x.firstTokenMs)).toFixed(0)} |`)
  } catch (err) {
    console.error(homes.map(logOf).join('\n').slice(-5000))
    console.error(String(err))
    process.exitCode = 1
  } finally {
    killAgents(started)
    fs.rmSync(root, { recursive: true, force: true })
  }
}
console.log(`load average at end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
