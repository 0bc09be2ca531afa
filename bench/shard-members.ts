/**
 * N ring members as N processes on 127.0.0.1, each loading only its shard (loadShardModel, the
 * loader the agent's ModelHost uses, on the engine --engine auto picks, one thread each) and
 * summing partials over the TCP tensor plane: per member, the weight bytes it holds,
 * load time and peak RSS; and tokens/s of the ring. With --pin, member i runs under
 * `taskset -c i` (one core each). Never asserted anywhere.
 *
 *   node --import tsx bench/shard-members.ts [--shape stories110M] [--members 1,2,3] [--tokens 32] [--runs 3] [--pin]
 *
 * Member 0 leads, as in a job: it alone loads the embedding and the classifier, feeds a fixed
 * token sequence, sends each position's embedding row to the others and computes the logits; so
 * the work and the messages per position are those of a greedy generation.
 */
import '../src/polyfill.js'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { embedding, forward, forwardEmbedded } from '../src/inference/forward.js'
import { localAllReduce, type AllReduce } from '../src/inference/reduce.js'
import { InputFeed } from '../src/inference/job/member.js'
import { autoEngineName, loadShardModel } from '../src/inference/model.js'
import { shardForColumns } from '../src/inference/shard.js'
import { createRunState } from '../src/inference/state.js'
import { planeAllReduce } from '../src/inference/tensor-plane/all-reduce.js'
import { TensorPlane } from '../src/inference/tensor-plane/plane.js'
import { splitColumns } from '../src/ring/assign.js'
import { median, memberIds, nextFrom, nextFromParent } from './member-processes.js'

const SECRET = Buffer.alloc(32, 5) // a bench-only pair secret; the agent agrees a real one over libp2p
const MODELS: Record<string, { model: string, tokenizer: string }> = {
  stories260K: { model: 'models/stories260K/stories260K.bin', tokenizer: 'models/stories260K/tok512.bin' },
  stories15M: { model: path.join(os.tmpdir(), 'mesh-bench-stories15M.bin'), tokenizer: 'test/fixtures/llama2-tokenizer/tokenizer.bin' },
  stories110M: { model: path.join(os.tmpdir(), 'mesh-bench-stories110M.bin'), tokenizer: 'test/fixtures/llama2-tokenizer/tokenizer.bin' }
}

interface MemberTask { index: number, members: number, model: string, tokenizer: string, tokens: number }
interface Ready { address: { host: string, port: number }, loadMs: number, weightBytes: number }
interface Done { msPerToken: number, waitMsPerToken: number, rssMiB: number }
type FromMember = { kind: 'ready' } & Ready | { kind: 'linked' } | { kind: 'done' } & Done
type ToMember = { kind: 'peers', addresses: Array<{ host: string, port: number }> } | { kind: 'go' }

const ids = memberIds
const next = async <K extends FromMember['kind']>(child: ChildProcess, kind: K): Promise<Extract<FromMember, { kind: K }>> => await nextFrom<FromMember, K>(child, kind)
const nextMessage = nextFromParent<ToMember>

async function member (task: MemberTask): Promise<void> {
  // the even split the ring makes (src/ring/assign.ts)
  const widths = splitColumns(new Array<number>(task.members).fill(1))
  const start = widths.slice(0, task.index).reduce((a, b) => a + b, 0)
  const end = start + widths[task.index]
  const t0 = performance.now()
  const { model, weightBytes } = await loadShardModel({
    checkpointPath: task.model,
    tokenizerPath: task.tokenizer,
    shard: (c) => shardForColumns(c, start, end),
    engine: { name: autoEngineName(), threads: 1 },
    // as in a job: member 0 embeds and samples, the others get each position's embedding row from it
    withClassifier: task.index === 0,
    withEmbedding: task.index === 0,
    checkpointSha256: 'not-checked-in-a-bench'
  })
  const loadMs = performance.now() - t0
  const c = model.config
  const plane = new TensorPlane({ selfId: `m${task.index}`, secretFor: () => SECRET, maxPayloadBytes: 4 * c.dim, epoch: 1 })
  const address = await plane.listen()
  process.send?.({ kind: 'ready', address, loadMs, weightBytes } satisfies FromMember)
  const peers = await nextMessage()
  if (peers.kind !== 'peers') throw new Error('expected the peer addresses')
  const members = ids(task.members)
  for (let j = task.index + 1; j < task.members; j++) await plane.connect(members[j], peers.addresses[j].host, peers.addresses[j].port)
  while (members.some((p, j) => j !== task.index && !plane.hasLink(p))) await new Promise((resolve) => setTimeout(resolve, 2))
  const feed = new InputFeed(c.dim)
  const reduce = task.members > 1
    ? planeAllReduce({ plane, job: 1, members, nLayers: c.nLayers, timeoutMs: 60_000, other: (peerId, h, payload) => h.kind === 'token' && peerId === 'm0' ? feed.push(h.position, payload) : 'wrong-step' })
    : null
  const sum = reduce?.allReduce ?? localAllReduce
  let waitMs = 0 // time in the all-reduce: sending, then waiting for the other members' partials
  const allReduce: AllReduce = async (partial, at) => {
    const t = performance.now()
    await sum(partial, at)
    waitMs += performance.now() - t
  }
  process.send?.({ kind: 'linked' } satisfies FromMember)
  if ((await nextMessage()).kind !== 'go') throw new Error('expected go')
  const state = createRunState(c, model.shard, task.tokens)
  let firstAt = 0
  for (let pos = 0; pos < task.tokens; pos++) {
    if (pos === 1) { firstAt = performance.now(); waitMs = 0 } // as llama2.c: the clock starts after the first position
    const token = (pos * 7919 + 1) % c.vocabSize
    if (task.index === 0) {
      for (const p of members.slice(1)) plane.send(p, { kind: 'token', layer: 0, job: 1, position: pos }, embedding(model, token))
      await forward(model, state, token, pos, allReduce)
    } else {
      state.x.set((await feed.next(60_000))!.rows)
      await forwardEmbedded(model, state, pos, allReduce)
    }
  }
  const msPerToken = (performance.now() - firstAt) / (task.tokens - 1)
  const waitMsPerToken = waitMs / (task.tokens - 1)
  reduce?.close()
  await plane.close()
  await model.matmuls.close()
  process.send?.({ kind: 'done', msPerToken, waitMsPerToken, rssMiB: process.resourceUsage().maxRSS / 1024 } satisfies FromMember)
}

interface RunResult { tokPerSec: number, perMember: Array<{ loadMs: number, weightMiB: number, rssMiB: number, waitMs: number }> }

async function ring (n: number, shape: { model: string, tokenizer: string }, tokens: number, pin: boolean): Promise<RunResult> {
  const script = new URL(import.meta.url).pathname
  const children = Array.from({ length: n }, (_, i) => {
    const node = [process.execPath, '--import', 'tsx', script, 'member', JSON.stringify({ index: i, members: n, model: shape.model, tokenizer: shape.tokenizer, tokens } satisfies MemberTask)]
    const [cmd, ...args] = pin ? ['taskset', '-c', String(i % os.cpus().length), ...node] : node
    return spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  })
  try {
    const ready = await Promise.all(children.map(async (ch) => await next(ch, 'ready')))
    for (const ch of children) ch.send({ kind: 'peers', addresses: ready.map((r) => r.address) } satisfies ToMember)
    await Promise.all(children.map(async (ch) => await next(ch, 'linked')))
    const finished = children.map(async (ch) => await next(ch, 'done'))
    for (const ch of children) ch.send({ kind: 'go' } satisfies ToMember)
    const done = await Promise.all(finished)
    await Promise.all(children.map(async (ch) => { if (ch.exitCode === null) await once(ch, 'exit') }))
    return {
      tokPerSec: 1000 / done[0].msPerToken,
      perMember: done.map((d, i) => ({ loadMs: ready[i].loadMs, weightMiB: ready[i].weightBytes / 2 ** 20, rssMiB: d.rssMiB, waitMs: d.waitMsPerToken }))
    }
  } finally {
    for (const ch of children) if (ch.exitCode === null) ch.kill()
  }
}

async function lead (): Promise<void> {
  const arg = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : fallback }
  const shapeName = arg('shape', 'stories110M')
  const shape = MODELS[shapeName]
  if (shape === undefined) throw new Error(`unknown shape ${shapeName}; one of ${Object.keys(MODELS).join(', ')}`)
  if (!existsSync(shape.model)) await promisify(execFile)(process.execPath, ['dist/cli/mesh.js', 'model', 'synth', '--shape', shapeName, '--out', shape.model])
  const counts = arg('members', '1,2,3').split(',').map(Number)
  const tokens = Number(arg('tokens', '32'))
  const runs = Number(arg('runs', '3'))
  const pin = process.argv.includes('--pin')
  const results = new Map<number, RunResult[]>(counts.map((n) => [n, []]))
  // interleaved rounds, so bursts of load on the shared machine hit every ring size alike
  for (let r = 0; r < runs; r++) for (const n of counts) results.get(n)?.push(await ring(n, shape, tokens, pin))
  console.log(`${shapeName}, ${autoEngineName()} engine, ${tokens} positions, ${runs} runs (medians)${pin ? ', member i pinned to core i' : ''}; ${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`)
  console.log('| members | tok/s | member | weights MiB | load ms | peak RSS MiB | in all-reduce ms/token |')
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const n of counts) {
    const rs = results.get(n) ?? []
    for (let i = 0; i < n; i++) {
      const m = (f: (x: RunResult['perMember'][number]) => number): string => median(rs.map((x) => f(x.perMember[i]))).toFixed(0)
      console.log(`| ${i === 0 ? n : ''} | ${i === 0 ? median(rs.map((x) => x.tokPerSec)).toFixed(1) : ''} | ${i} | ${m((x) => x.weightMiB)} | ${m((x) => x.loadMs)} | ${m((x) => x.rssMiB)} | ${median(rs.map((x) => x.perMember[i].waitMs)).toFixed(2)} |`)
    }
  }
}

if (process.argv[2] === 'member') await member(JSON.parse(process.argv[3]) as MemberTask)
else await lead()
