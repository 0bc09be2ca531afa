import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest'
import type { AgentStatus } from '../../src/agent/agent.js'
import { callAgent } from '../../src/agent/api/client.js'
import type { InferenceStats } from '../../src/agent/inference/events.js'
import type { RingReport } from '../../src/agent/net/pool-ring.js'
import { readPid } from '../../src/agent/pidfile.js'
import { hashFile } from '../../src/inference/files.js'
import { modelIdentity } from '../../src/inference/identity.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'
import { NetnsLab, netnsUnavailable, type LabNode } from './netns.js'

const why = netnsUnavailable() ?? (SHARED_DIR === null ? 'no shared GGUF test data (../shared or MESH_SHARED)' : undefined)
if (why !== undefined) console.warn(`SKIPPED GGUF ring e2e tests: ${why}`)

/** the issue's three GGUF test models; the first one's ring also meets a member serving the second */
const MODELS = ['llama3-test.q4_k_m', 'qwen3-test.q4_k_m', 'qwen2-test.q8_0'] as const
type ModelName = typeof MODELS[number]
const modelFile = (m: ModelName): string => sharedPath(`models/gguf/${m}.gguf`)

interface GoldenCase { prompt: string, prompt_token_ids: number[] }
/** the golden prompts (llama.cpp's tokenization of each); the continuation to match is one device's, not llama.cpp's (../shared/golden/gguf/README.md) */
const goldenCases = (m: ModelName): GoldenCase[] =>
  (JSON.parse(fs.readFileSync(sharedPath(`golden/gguf/${m}.json`), 'utf8')) as { cases: GoldenCase[] }).cases
/** the goldens run 48 new tokens */
const NEW_TOKENS = '48'
/** the failover case: a member is killed after KILL_AT of its tokens, well before the end */
const FAILOVER = { prompt: 'Once upon a time', maxTokens: '160' }
const KILL_AT = 40

interface JobJson { token_ids: number[], prompt_token_ids: number[], failovers: number, members: Array<{ node_id: string, leader: boolean }> }

/**
 * GGUF models across rings of real agents, each in its own network namespace on one bridge
 * (multicast beacons for the join, libp2p and the TCP tensor plane over the bridge): rings of 3
 * and 2 give one device's token ids for every golden prompt, kill -9 of one of three
 * mid-generation changes nothing, and a member serving another GGUF is left out with the notice.
 * "One device's ids" means token for token. One lab for the whole file; each model's ring is three
 * agents restarted on it.
 */
describe.skipIf(why !== undefined)(`GGUF rings across network namespaces${why !== undefined ? ` (SKIPPED: ${why})` : ''}`, () => {
  let lab: NetnsLab
  const nodeIds = new Map<LabNode, string>()
  const idOf = (n: LabNode): string => nodeIds.get(n) as string
  /** `mesh inference --local` ids per model, prompt and length: one device, the same kernels */
  const local = new Map<string, { token_ids: number[] }>()

  /** `mesh ARGS` in a node's namespace; generous timeout: four agents share two busy cores */
  async function meshOk (n: LabNode, args: string[]): Promise<string> {
    const r = await lab.mesh(n, args, {}, 120_000)
    if (r.code !== 0) throw new Error(`mesh ${args.join(' ')} on ${n.name} exited ${r.code}: ${r.stderr.trim()}`)
    return r.stdout
  }

  /**
   * Every agent stopped, then `nodes` started serving `model` (one thread each: up to four agents
   * on two cores); `fetcher` starts with only its sha256 and fetches the file from the others.
   */
  async function serve (nodes: LabNode[], model: ModelName, fetcher?: LabNode): Promise<void> {
    for (const n of lab.nodes) await lab.mesh(n, ['stop'], {}, 60_000)
    const sha256 = await hashFile(modelFile(model))
    await Promise.all(nodes.map(async (n) => await meshOk(n, ['start', ...(n === fetcher ? ['--model-sha256', sha256] : ['--model', modelFile(model)]), '--threads', '1'])))
    if (fetcher === undefined) return
    const fetched = path.join(fetcher.home, 'models', `${sha256}.gguf`)
    expect(fs.readFileSync(fetched).equals(fs.readFileSync(modelFile(model)))).toBe(true)
    expect((await callAgent<AgentStatus>(fetcher.home, 'GET', '/v1/status')).model?.checkpoint).toBe(fetched)
  }

  const idCache = new Map<ModelName, string>()
  async function modelId (m: ModelName): Promise<string> {
    const known = idCache.get(m)
    if (known !== undefined) return known
    const sha = await hashFile(modelFile(m))
    const id = modelIdentity(sha, sha).id
    idCache.set(m, id)
    return id
  }

  /** The ring is `ring` on every one of them, converged, and `serving` announce `model`. */
  async function ringIs (ring: LabNode[], serving: LabNode[], model: ModelName): Promise<void> {
    const want = ring.map(idOf).sort()
    const id = await modelId(model)
    await vi.waitFor(async () => {
      for (const n of ring) {
        const [r] = await callAgent<RingReport[]>(n.home, 'GET', '/v1/ring')
        expect(r?.topology.members.map((m) => m.nodeId).sort()).toEqual(want)
        expect(r?.converged).toBe(true)
        for (const s of serving) expect(r?.models?.members[idOf(s)]).toBe(id)
      }
    }, { timeout: 90_000, interval: 200 })
  }

  async function localRun (m: ModelName, prompt: string, maxTokens: string): Promise<{ token_ids: number[] }> {
    const key = `${m}\n${prompt}\n${maxTokens}`
    const known = local.get(key)
    if (known !== undefined) return known
    const r = JSON.parse(await meshOk(lab.node(0), ['inference', '--local', '--model', modelFile(m), '--prompt', prompt, '--max-tokens', maxTokens, '--temperature', '0', '--json'])) as { token_ids: number[] }
    local.set(key, r)
    return r
  }

  /** The ring's ids against one device's: equal, token for token. */
  async function expectOneDevice (m: ModelName, ring: readonly number[], prompt: string, maxTokens: string, what: string): Promise<void> {
    const one = (await localRun(m, prompt, maxTokens)).token_ids
    expect(ring.join(' '), `${m}, ${what}, ${JSON.stringify(prompt)}`).toBe(one.join(' ')) // as text: the diff shows where they part
  }

  /** Every golden prompt through the ring led by `leader`: llama.cpp's prompt ids, then one device's ids. */
  async function sameAsOneDevice (m: ModelName, leader: LabNode, size: number): Promise<void> {
    for (const c of goldenCases(m)) {
      const r = await lab.mesh(leader, ['inference', '--prompt', c.prompt, '--max-tokens', NEW_TOKENS, '--temperature', '0', '--json'], {}, 120_000)
      expect(r.code, r.stderr).toBe(0)
      const job = JSON.parse(r.stdout) as JobJson
      expect(job.members, c.prompt).toHaveLength(size)
      expect(job.members.find((x) => x.leader)?.node_id).toBe(idOf(leader))
      expect(job.token_ids.slice(0, c.prompt_token_ids.length), c.prompt).toEqual(c.prompt_token_ids)
      await expectOneDevice(m, job.token_ids, c.prompt, NEW_TOKENS, `ring of ${size}`)
    }
  }

  beforeAll(async () => {
    lab = NetnsLab.create(4)
    const [admin, ...members] = lab.nodes as [LabNode, ...LabNode[]]
    await Promise.all(lab.nodes.map(async (n, i) => {
      const out = JSON.parse(await meshOk(n, ['init', '--json', '--network-id', 'lab', '--name', `dev${i}`])) as { nodeId: string }
      nodeIds.set(n, out.nodeId)
    }))
    const pool = JSON.parse(await meshOk(admin, ['pool-create', '--json', '--name', 'lab'])) as { poolId: string, rootPublicKey: string, joinToken: string }
    // certificates come at each member's first start, over the bridge's multicast beacons
    await Promise.all(members.map(async (n) => await meshOk(n, ['pool-join', '--pool-id', pool.poolId, '--pool-root-pubkey', pool.rootPublicKey, '--name', 'lab', '--token', pool.joinToken])))
  }, 120_000)

  afterAll(() => { lab?.destroy() })

  for (const m of MODELS) {
    // the last model's third member has no file: it fetches it over /mesh/model across the bridge
    const fetcher = m === MODELS[MODELS.length - 1] ? 2 : undefined
    it(`${m}: a ring of three gives one device's token ids for every golden prompt${fetcher === undefined ? '' : ' (one member fetched the file from the others)'}`, async () => {
      onTestFailed(() => { console.error(lab.logs()) })
      const three = lab.nodes.slice(0, 3)
      await serve(three, m, fetcher === undefined ? undefined : lab.node(fetcher))
      await ringIs(three, three, m)
      await sameAsOneDevice(m, lab.node(1), 3)
    }, 240_000)

    if (m === MODELS[0]) {
      it(`${m}: a member serving another GGUF (another sha256) is left out of the job with the notice`, async () => {
        onTestFailed(() => { console.error(lab.logs()) })
        const other: ModelName = 'qwen2-test.q8_0'
        const odd = lab.node(3)
        try {
          await meshOk(odd, ['start', '--model', modelFile(other), '--threads', '1'])
          await ringIs(lab.nodes, lab.nodes.slice(0, 3), m)
          const otherId = (await modelId(other)).slice(0, 12)
          expect(await meshOk(lab.node(0), ['ring-status'])).toMatch(new RegExp(`${idOf(odd)} +dev3 .* ${otherId} +excluded: serves another model \\(${otherId}\\)`))
          const prompt = FAILOVER.prompt
          const r = await lab.mesh(lab.node(2), ['inference', '--prompt', prompt, '--max-tokens', NEW_TOKENS, '--temperature', '0', '--json'], {}, 120_000)
          expect(r.code, r.stderr).toBe(0)
          expect(r.stderr).toMatch(new RegExp(`^mesh: notice: member \\S+ left out of this job: it serves another model \\(${otherId}\\)$`, 'm'))
          const job = JSON.parse(r.stdout) as JobJson
          expect(job.members).toHaveLength(3)
          expect(job.members.map((x) => x.node_id)).not.toContain(idOf(odd))
          await expectOneDevice(m, job.token_ids, prompt, NEW_TOKENS, 'a ring of three beside a member serving another model')
        } finally {
          // the next cases want a ring of the three serving members
          await meshOk(odd, ['stop'])
        }
        await ringIs(lab.nodes.slice(0, 3), lab.nodes.slice(0, 3), m)
      }, 180_000)
    }

    it(`${m}: kill -9 of one of three mid-generation fails over, with one device's ids`, async () => {
      onTestFailed(() => { console.error(lab.logs()) })
      const leader = lab.node(0)
      const victim = lab.node(2)
      const job = lab.mesh(leader, ['inference', '--prompt', FAILOVER.prompt, '--max-tokens', FAILOVER.maxTokens, '--temperature', '0', '--json'], {}, 120_000)
      // mid-generation: once the leader has generated KILL_AT tokens of this job (its live stats)
      let killedAt = -1
      await vi.waitFor(async () => {
        const stats = await callAgent<InferenceStats>(leader.home, 'GET', '/v1/inference-stats')
        const tokens = stats.active.leading[0]?.tokens ?? 0
        expect(tokens).toBeGreaterThanOrEqual(KILL_AT)
        killedAt = tokens
      }, { timeout: 60_000, interval: 20 })
      process.kill(readPid(victim.home)!, 'SIGKILL')
      const r = await job
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toMatch(/^mesh: notice: a member was lost at position \d+ .*re-planning on the next ring epoch$/m)
      const result = JSON.parse(r.stdout) as JobJson
      expect(result.failovers).toBe(1)
      expect(result.members).toHaveLength(2)
      await expectOneDevice(m, result.token_ids, FAILOVER.prompt, FAILOVER.maxTokens, `kill -9 of one of three after ${killedAt} tokens`)
    }, 180_000)

    it(`${m}: the two left give one device's token ids for every golden prompt`, async () => {
      onTestFailed(() => { console.error(lab.logs()) })
      const two = lab.nodes.slice(0, 2)
      await ringIs(two, two, m)
      await sameAsOneDevice(m, lab.node(0), 2)
    }, 180_000)
  }
})
