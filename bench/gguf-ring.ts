/**
 * A GGUF model across N ring members, each a process on 127.0.0.1 loading only its shard
 * (loadGgufShard, as the agent's ModelHost does) and running the job session the agent runs
 * (openSession: chunked prefill, one all-reduce per layer half over the TCP tensor plane). Member
 * 0 leads: it embeds, sends each step's rows to the others and samples greedily.
 *
 *   npm run build && node --import tsx bench/gguf-ring.ts [--model llama3-1b.q4_k_m] [--members 1,2,3] [--tokens 64] [--prompt 512] [--runs 3] [--pin] [--threads 1] [--delay-ms 0]
 *
 * Per ring size: generation tok/s, time to first token for a --prompt-token prompt, and per member
 * the compute and all-reduce ms per generated token, the sync cost (the least all-reduce time of
 * any member: what even the slowest member pays), its wait for slower members (its all-reduce
 * time beyond that), weight MiB and peak RSS. --pin runs member i on core i (taskset); --threads
 * is each member's kernel threads. --delay-ms puts a user-space TCP relay on every link that holds
 * each chunk that long each way (Node timers: whole milliseconds), to see a LAN's latency; the
 * closing line projects N devices' speed-up from one device's compute and the measured sync.
 * Models come from MESH_BENCH_CACHE (default ~/.cache/mesh-bench)/models (../shared/tools/bench-models.sh).
 */
import '../src/polyfill.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { readGguf } from '../src/inference/gguf/reader.js'
import { llmConfig, modelTensors } from '../src/inference/gguf/architecture.js'
import { InputFeed } from '../src/inference/job/member.js'
import { llmJobModel } from '../src/inference/job/llm.js'
import { openSession } from '../src/inference/job/session.js'
import { defaultLlmEngine } from '../src/inference/llm/engine.js'
import { llmModel, loadGgufShard } from '../src/inference/llm/load.js'
import { llmShardDims, llmShardForColumns, llmUnits } from '../src/inference/llm/shard-plan.js'
import { TensorPlane } from '../src/inference/tensor-plane/plane.js'
import { splitColumns } from '../src/ring/assign.js'
import { median, memberIds, nextFrom, nextFromParent } from './member-processes.js'

const SECRET = Buffer.alloc(32, 5) // a bench-only pair secret; the agent agrees a real one over libp2p
const CACHE = process.env.MESH_BENCH_CACHE ?? path.join(os.homedir(), '.cache', 'mesh-bench')

interface Task { index: number, members: number, model: string, tokens: number, prompt: number, threads: number }
interface Done { computeMs: number, networkMs: number, genMs: number, ttftMs: number, weightMiB: number, rssMiB: number }
type FromMember = { kind: 'ready', port: number } | { kind: 'linked' } | ({ kind: 'done' } & Done)
type ToMember = { kind: 'peers', ports: number[] } | { kind: 'go' }

const ids = memberIds
const next = async <K extends FromMember['kind']>(child: ChildProcess, kind: K): Promise<Extract<FromMember, { kind: K }>> => await nextFrom<FromMember, K>(child, kind)
const nextMessage = nextFromParent<ToMember>

async function member (task: Task): Promise<void> {
  const widths = splitColumns(new Array<number>(task.members).fill(1))
  const start = widths.slice(0, task.index).reduce((a, b) => a + b, 0)
  const file = await readGguf(task.model)
  const c = llmConfig(file)
  const shard = llmShardForColumns(c, llmUnits(c, modelTensors(file, c)), start, start + widths[task.index])
  const engine = defaultLlmEngine()
  const g = await loadGgufShard(file, 'not-checked-in-a-bench', shard, task.index === 0 ? 'leader' : 'member', engine)
  const w = g.weights
  const tied = w.tokEmb !== null && c.tiedClassifier // the leader's classifier rows are a view of its embedding
  const matrices = [w.tokEmb, tied ? null : w.output, ...w.layers.flatMap((l) => [l.wq, l.wk, l.wv, l.wo, l.gate, l.up, l.down])]
  const weightMiB = matrices.reduce((n, m) => n + (m?.bytes.byteLength ?? 0), 0) / 2 ** 20
  const jm = llmJobModel(llmModel(g, engine, task.threads))
  const plane = new TensorPlane({ selfId: `m${task.index}`, secretFor: () => SECRET, maxPayloadBytes: 1 << 20, epoch: 1 })
  const { port } = await plane.listen()
  process.send?.({ kind: 'ready', port } satisfies FromMember)
  const peers = await nextMessage()
  if (peers.kind !== 'peers') throw new Error('expected the peer ports')
  const members = ids(task.members)
  for (let j = task.index + 1; j < task.members; j++) await plane.connect(members[j], '127.0.0.1', peers.ports[task.index * task.members + j])
  while (members.some((p, j) => j !== task.index && !plane.hasLink(p))) await new Promise((resolve) => setTimeout(resolve, 2))
  const batch = Math.min(jm.maxBatch, Math.floor((1 << 20) / (jm.partialBytes * c.dim)))
  const feed = new InputFeed(c.dim, batch)
  const positions = task.prompt + task.tokens + 1
  const session = openSession({
    plane, job: 1, epoch: 1, members, leader: 'm0', model: jm, positions, batch, timeoutMs: 120_000,
    other: (peerId, h, payload) => h.kind === 'token' && peerId === 'm0' ? feed.push(h.position, payload) : 'wrong-step'
  })
  process.send?.({ kind: 'linked' } satisfies FromMember)
  if ((await nextMessage()).kind !== 'go') throw new Error('expected go')
  const prompt = Array.from({ length: task.prompt }, (_, i) => (i * 7919 + 1) % c.vocabSize)
  let ttftMs = 0
  let genStart = 0
  let before = { computeMs: 0, networkMs: 0 }
  const t0 = performance.now()
  if (task.index === 0) {
    const step = async (tokens: number[], pos0: number): Promise<number> => {
      const rows = session.embed(tokens)
      for (const p of members.slice(1)) plane.send(p, { kind: 'token', layer: 0, job: 1, position: pos0 }, rows)
      return argmax(await session.lead(rows, pos0))
    }
    let token = 0
    for (let at = 0; at < prompt.length; at += batch) token = await step(prompt.slice(at, at + batch), at)
    ttftMs = performance.now() - t0
    genStart = performance.now()
    before = { ...session.times }
    for (let pos = prompt.length; pos < prompt.length + task.tokens; pos++) token = await step([token], pos)
  } else {
    for (let pos = 0; pos < prompt.length + task.tokens;) {
      if (pos === prompt.length) { genStart = performance.now(); before = { ...session.times } }
      const { rows } = (await feed.next(120_000))!
      await session.follow(rows, pos)
      pos += rows.length / c.dim
    }
  }
  const genMs = performance.now() - genStart
  session.close()
  await plane.close()
  process.send?.({
    kind: 'done',
    computeMs: (session.times.computeMs - before.computeMs) / task.tokens,
    networkMs: (session.times.networkMs - before.networkMs) / task.tokens,
    genMs: genMs / task.tokens,
    ttftMs,
    weightMiB,
    rssMiB: process.resourceUsage().maxRSS / 1024
  } satisfies FromMember)
}

function argmax (v: Float32Array): number {
  let best = 0
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i
  return best
}

/** A TCP relay that holds every chunk `delayMs` before passing it on, each way: a LAN's latency on loopback. */
async function delayRelay (targetPort: number, delayMs: number): Promise<{ port: number, close: () => void }> {
  const pipe = (from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk) => { setTimeout(() => { if (!to.destroyed) to.write(chunk) }, delayMs) })
    from.on('close', () => { setTimeout(() => to.destroy(), delayMs) })
    from.on('error', () => to.destroy())
  }
  const server = net.createServer({ noDelay: true }, (inbound) => {
    const outbound = net.connect({ host: '127.0.0.1', port: targetPort, noDelay: true })
    pipe(inbound, outbound)
    pipe(outbound, inbound)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, close: () => { server.close() } }
}

interface RunResult { done: Done[] }

async function ring (n: number, task: Omit<Task, 'index' | 'members'>, pin: boolean, delayMs: number): Promise<RunResult> {
  const script = new URL(import.meta.url).pathname
  const children = Array.from({ length: n }, (_, i) => {
    const node = [process.execPath, '--import', 'tsx', script, 'member', JSON.stringify({ ...task, index: i, members: n } satisfies Task)]
    const [cmd, ...args] = pin ? ['taskset', '-c', String(i % os.cpus().length), ...node] : node
    return spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, GOMP_SPINCOUNT: '10000' } })
  })
  const relays: Array<{ close: () => void }> = []
  try {
    const ready = await Promise.all(children.map(async (ch) => await next(ch, 'ready')))
    // ports[i·n + j]: where member i dials member j, through a relay when asked
    const ports = new Array<number>(n * n).fill(0)
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        if (delayMs > 0) { const r = await delayRelay(ready[j].port, delayMs); relays.push(r); ports[i * n + j] = r.port } else ports[i * n + j] = ready[j].port
      }
    }
    for (const ch of children) ch.send({ kind: 'peers', ports } satisfies ToMember)
    await Promise.all(children.map(async (ch) => await next(ch, 'linked')))
    const finished = children.map(async (ch) => await next(ch, 'done'))
    for (const ch of children) ch.send({ kind: 'go' } satisfies ToMember)
    const done = await Promise.all(finished)
    await Promise.all(children.map(async (ch) => { if (ch.exitCode === null) await once(ch, 'exit') }))
    return { done }
  } finally {
    for (const ch of children) if (ch.exitCode === null) ch.kill()
    for (const r of relays) r.close()
  }
}

/** Where members outnumber kv groups, a kv head's K/V rows and cache are computed on each member that reads it: how many. */
async function kvHeadsHeld (model: string, n: number): Promise<string> {
  const file = await readGguf(model)
  const c = llmConfig(file)
  const u = llmUnits(c, modelTensors(file, c))
  let at = 0
  const held = splitColumns(new Array<number>(n).fill(1)).map((w) => { const d = llmShardDims(c, llmShardForColumns(c, u, at, at + w)); at += w; return d.nKvHeads })
  const total = held.reduce((a, b) => a + b, 0)
  return `kv heads computed: ${held.join(' + ')} = ${total} of ${c.nKvHeads}${total === c.nKvHeads ? ' (none twice)' : ` (${(100 * (total - c.nKvHeads) / c.nKvHeads).toFixed(0)}% more K/V rows and cache)`}`
}

async function lead (): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      model: { type: 'string', default: 'llama3-1b.q4_k_m' },
      members: { type: 'string', default: '1,2,3' },
      tokens: { type: 'string', default: '64' },
      prompt: { type: 'string', default: '512' },
      runs: { type: 'string', default: '3' },
      threads: { type: 'string', default: '1' },
      'delay-ms': { type: 'string', default: '0' },
      pin: { type: 'boolean', default: false }
    }
  })
  const model = path.join(CACHE, 'models', `${v.model}.gguf`)
  const counts = v.members.split(',').map(Number)
  const task = { model, tokens: Number(v.tokens), prompt: Number(v.prompt), threads: Number(v.threads) }
  const delayMs = Number(v['delay-ms'])
  const results = new Map<number, RunResult[]>(counts.map((n) => [n, []]))
  // interleaved rounds, so bursts of load on the shared machine hit every ring size alike
  for (let r = 0; r < Number(v.runs); r++) for (const n of counts) results.get(n)?.push(await ring(n, task, v.pin, delayMs))
  console.log(`${v.model}, ${defaultLlmEngine()} kernels, ${task.threads} thread(s) a member, ${task.prompt}-token prompt then ${task.tokens} tokens, ${v.runs} runs (medians)${v.pin ? ', member i pinned to core i' : ''}${delayMs > 0 ? `, ${delayMs} ms relay delay each way` : ''}; ${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`)
  console.log('| members | tok/s | TTFT ms | member | compute ms/token | all-reduce ms/token | sync ms/token | waiting for slower ms/token | weights MiB | peak RSS MiB |')
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  const oneCompute = results.has(1) ? median(results.get(1)!.map((r) => r.done[0].computeMs)) : undefined
  for (const n of counts) {
    const rs = results.get(n) ?? []
    const sync = median(rs.map((r) => Math.min(...r.done.map((d) => d.networkMs))))
    for (let i = 0; i < n; i++) {
      const m = (f: (d: Done) => number, digits = 1): string => median(rs.map((r) => f(r.done[i]))).toFixed(digits)
      const head = i === 0 ? [String(n), (1000 / median(rs.map((r) => r.done[0].genMs))).toFixed(1), median(rs.map((r) => r.done[0].ttftMs)).toFixed(0)] : ['', '', '']
      console.log(`| ${[...head, String(i), m((d) => d.computeMs, 2), m((d) => d.networkMs, 2), i === 0 ? sync.toFixed(2) : '', median(rs.map((r) => r.done[i].networkMs - Math.min(...r.done.map((x) => x.networkMs)))).toFixed(2), m((d) => d.weightMiB, 0), m((d) => d.rssMiB, 0)].join(' | ')} |`)
    }
    if (n > 1) console.log(`|  |  |  | ${await kvHeadsHeld(model, n)} |  |  |  |  |  |  |`)
    if (oneCompute !== undefined && n > 1) {
      const projected = oneCompute / (oneCompute / n + sync)
      console.log(`|  |  |  | projected on ${n} devices: one device's compute ${oneCompute.toFixed(2)} ms ÷ (${(oneCompute / n).toFixed(2)} + sync ${sync.toFixed(2)}) = ${projected.toFixed(2)}× |  |  |  |  |  |  |`)
    }
  }
}

if (process.argv[2] === 'member') await member(JSON.parse(process.argv[3]) as Task)
else await lead()
