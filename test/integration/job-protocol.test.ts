import { readFileSync } from 'node:fs'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { llama2cJobModel, type Llama2cJobModel } from '../../src/inference/job/llama2c.js'
import type { ModelLease } from '../../src/inference/job/session.js'
import { generateWith } from '../../src/inference/generate.js'
import { LeaderRun, type MemberStats, type RingView } from '../../src/inference/job/leader.js'
import { serveJob, type MemberOutcome } from '../../src/inference/job/member.js'
import { evenRanges } from '../../src/inference/job/plan.js'
import { loadModel, shardedModel, type LoadedModel } from '../../src/inference/model.js'
import { createSampler } from '../../src/inference/sampler.js'
import { llama2cSharding, type Shard } from '../../src/inference/shard.js'
import type { TensorPlane } from '../../src/inference/tensor-plane/plane.js'
import { channelPair } from '../helpers/job-wire.js'
import { connectedPlanes } from '../helpers/tensor-planes.js'

const golden = JSON.parse(readFileSync('test/fixtures/golden/stories260K-greedy.json', 'utf8')) as { generations: Array<{ prompt: string, steps: number, prompt_token_ids: number[], token_ids: number[] }> }
const POOL = 'a'.repeat(64)

let loaded: LoadedModel
const models = new Map<string, Llama2cJobModel>()
async function modelFor (shard: Shard): Promise<ModelLease> {
  const key = JSON.stringify(shard)
  let m = models.get(key)
  if (m === undefined) { m = llama2cJobModel(await shardedModel(loaded, { name: 'wasm', threads: 1 }, shard)); models.set(key, m) }
  return { model: m, release: () => {} }
}
beforeAll(async () => {
  loaded = await loadModel({ checkpointPath: 'models/stories260K/stories260K.bin', tokenizerPath: 'models/stories260K/tok512.bin', forWasm: true })
})

let open: TensorPlane[] = []
afterEach(async () => { await Promise.all(open.splice(0).map(async (p) => { await p.close() })) })

/** Members on real tensor planes over TCP (127.0.0.1), control streams in process, a ring the test controls. */
/** `modelIdOf`: the model a member serves; `announced`: what its heartbeats say (the same unless a test says otherwise) */
async function cluster (ids: string[], modelIdOf: (id: string) => string = () => loaded.identity.id, announced: (id: string) => string | undefined = modelIdOf) {
  const planes = await connectedPlanes(ids, 4 * loaded.checkpoint.config.dim)
  open.push(...planes)
  const ring = { epoch: 1, alive: [...ids] }
  const outcomes: MemberOutcome[] = []
  const plane = (id: string): TensorPlane => planes[ids.indexOf(id)]
  const notices: string[] = []
  let jobs = 0
  const opened: string[] = []
  const leader = (id: string, positions: number): LeaderRun<Shard> => new LeaderRun({
    plane: plane(id),
    poolId: POOL,
    modelId: loaded.identity.id,
    sharding: llama2cSharding(loaded.checkpoint.config),
    modelFor,
    open: async (nodeId) => {
      if (!ring.alive.includes(nodeId)) throw new Error('connection refused')
      opened.push(nodeId)
      const [mine, theirs] = channelPair()
      void theirs.receive().then(async (m) => {
        if (m?.type !== 'open') return
        outcomes.push(await serveJob(m, theirs, { plane: plane(nodeId), modelId: modelIdOf(nodeId), sharding: llama2cSharding(loaded.checkpoint.config), modelFor, link: async () => {}, epochOf: () => ring.epoch, timeoutMs: 5000 }))
      })
      return mine
    },
    link: async () => {},
    ring: async (moveOn?: number): Promise<RingView> => {
      if (moveOn === ring.epoch) throw new Error('test ring did not move on') // the tests move it before the failure shows
      return { epoch: ring.epoch, members: evenRanges(ring.alive).map((m) => ({ ...m, model: announced(m.nodeId) })) }
    },
    jobNumber: () => ++jobs,
    notice: (t) => notices.push(t),
    timeoutMs: 5000,
    failoverMs: 10_000
  }, positions)
  return { ring, leader, outcomes, notices, plane, opened }
}

async function run (c: Awaited<ReturnType<typeof cluster>>, leaderId: string, prompt: string, maxTokens: number, onToken?: (n: number) => void): Promise<{ ids: number[], stats: MemberStats[] }> {
  let lr: LeaderRun<Shard> | undefined
  let n = 0
  const g = await generateWith(loaded.checkpoint.config, loaded.tokenizer, async (positions) => { lr = c.leader(leaderId, positions); return lr.step }, {
    prompt,
    maxTokens,
    sampler: createSampler({ temperature: 0, topP: 0.9, seed: 1n }),
    onToken: () => onToken?.(++n)
  })
  return { ids: g.tokenIds, stats: await lr!.finish() }
}

const goldenCase = (steps: number) => {
  const g = golden.generations.find((x) => x.prompt === 'Once upon a time' && x.steps === steps)
  if (g === undefined) throw new Error('golden case missing')
  return { ...g, maxTokens: g.steps - g.prompt_token_ids.length + 1 }
}

describe('the job protocol: a leader and members on real tensor planes', () => {
  it.each([2, 3])('%i members produce the golden greedy ids; every member reports its share', async (n) => {
    const g = goldenCase(64)
    const ids = Array.from({ length: n }, (_, i) => `m${i}`)
    const c = await cluster(ids)
    const { ids: tokens, stats } = await run(c, 'm1', g.prompt, g.maxTokens)
    expect(tokens).toEqual(g.token_ids)
    expect(stats.map((s) => s.nodeId)).toEqual(ids)
    expect(stats.every((s) => s.positions === g.token_ids.length - 1)).toBe(true)
    expect(stats.find((s) => s.leader)?.nodeId).toBe('m1')
    expect(c.outcomes.map((o) => o.kind)).toEqual(Array(n - 1).fill('done'))
  })

  it('runs concurrent jobs from different leaders on the same members without mixing their state', async () => {
    const g = goldenCase(64)
    const other = golden.generations.find((x) => x.prompt === '' && x.steps === 64)!
    const c = await cluster(['m0', 'm1', 'm2'])
    const [a, b] = await Promise.all([run(c, 'm0', g.prompt, g.maxTokens), run(c, 'm2', other.prompt, other.steps - other.prompt_token_ids.length + 1)])
    expect(a.ids).toEqual(g.token_ids)
    expect(b.ids).toEqual(other.token_ids)
  })

  it('leaves out, before opening the job, a member whose heartbeats announce another model (or none yet)', async () => {
    const g = goldenCase(64)
    const other = 'b'.repeat(64)
    const c = await cluster(['m0', 'm1', 'm2', 'm3'], (id) => id === 'm2' ? other : loaded.identity.id, (id) => id === 'm2' ? other : id === 'm3' ? undefined : loaded.identity.id)
    const { ids, stats } = await run(c, 'm0', g.prompt, g.maxTokens)
    expect(ids).toEqual(g.token_ids)
    expect(stats.map((s) => s.nodeId)).toEqual(['m0', 'm1'])
    expect(c.opened).toEqual(['m1'])
    expect(c.notices).toEqual([
      `member m2 left out of this job: it serves another model (${other.slice(0, 12)})`,
      'member m3 left out of this job: it has not announced a model yet'
    ])
  })

  it('leaves out a member that refuses the job for its model (its heartbeat said otherwise) and runs on the others, with a notice', async () => {
    const g = goldenCase(64)
    const c = await cluster(['m0', 'm1', 'm2'], (id) => id === 'm2' ? 'b'.repeat(64) : loaded.identity.id, () => loaded.identity.id)
    const { ids, stats } = await run(c, 'm0', g.prompt, g.maxTokens)
    expect(ids).toEqual(g.token_ids)
    expect(stats.map((s) => s.nodeId)).toEqual(['m0', 'm1'])
    expect(c.outcomes).toContainEqual(expect.objectContaining({ kind: 'refused', reason: 'model-mismatch' }))
    expect(c.notices).toEqual([expect.stringMatching(/member m2 left out of this job: it serves a different model/)])
  })

  it('fails over when a member dies mid-generation: the remaining members rebuild and the text is unchanged', async () => {
    const g = goldenCase(256)
    const c = await cluster(['m0', 'm1', 'm2'])
    const { ids, stats } = await run(c, 'm0', g.prompt, g.maxTokens, (n) => {
      if (n !== 100) return
      c.ring.alive = ['m0', 'm1']
      c.ring.epoch = 2
      void c.plane('m2').close() // its links close as a kill -9 would close them
    })
    expect(ids).toEqual(g.token_ids)
    expect(stats.map((s) => s.nodeId)).toEqual(['m0', 'm1'])
    expect(c.notices).toEqual([expect.stringMatching(/a member was lost at position \d+ .*re-planning/)])
  })
})
