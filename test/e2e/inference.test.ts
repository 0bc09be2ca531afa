import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest'
import type { AgentStatus } from '../../src/agent/agent.js'
import { callAgent } from '../../src/agent/api/client.js'
import { readTopology } from '../../src/ring/topology.js'
import { expectFailoverToGolden } from '../helpers/failover.js'
import { createAdmin, joinMember, type CreatedPool } from './lan-join.js'
import { MESH_JS, NetnsLab, netnsUnavailable, type LabNode, type RunResult } from './netns.js'

const why = netnsUnavailable()
if (why !== undefined) console.warn(`SKIPPED inference e2e tests: ${why}`)

interface Generation { prompt: string, steps: number, prompt_token_ids: number[], token_ids: number[], stdout_exact: string }
const golden = (JSON.parse(fs.readFileSync('test/fixtures/golden/stories260K-greedy.json', 'utf8')) as { generations: Generation[] }).generations
const goldenRun = (prompt: string, steps: number): Generation & { maxTokens: string } => {
  const g = golden.find((x) => x.prompt === prompt && x.steps === steps)
  if (g === undefined) throw new Error(`no golden run for ${JSON.stringify(prompt)}, ${steps} steps`)
  return { ...g, maxTokens: String(g.steps - g.prompt_token_ids.length + 1) }
}
// every golden prompt (the empty one starts from BOS), 64 steps each
const PROMPTS = ['', 'Once upon a time']

interface JobJson { token_ids: number[], members: Array<{ node_id: string, leader: boolean }> }

/**
 * Distributed inference between real agents in network namespaces on one bridge: an admin and two
 * members that joined by multicast beacons (pool-join with the token), a ring of three over
 * libp2p, tensor-plane links over the bridge. One lab for the whole file, so it stays quick.
 */
describe.skipIf(why !== undefined)(`mesh inference across network namespaces${why !== undefined ? ` (SKIPPED: ${why})` : ''}`, () => {
  let lab: NetnsLab
  let pool: CreatedPool
  const nodeIds = new Map<LabNode, string>()
  const ringOf = (n: LabNode): string[] => readTopology(n.home, pool.poolId)?.members.map((m) => m.nodeId) ?? []

  async function ringIs (nodes: LabNode[]): Promise<void> {
    const want = nodes.map((n) => nodeIds.get(n)).sort()
    await vi.waitFor(() => { for (const n of nodes) expect([...ringOf(n)].sort()).toEqual(want) }, { timeout: 30_000, interval: 50 })
  }

  async function goldenOnRing (leader: LabNode, size: number): Promise<void> {
    for (const prompt of PROMPTS) {
      const g = goldenRun(prompt, 64)
      const r = await lab.mesh(leader, ['inference', '--prompt', prompt, '--max-tokens', g.maxTokens, '--temperature', '0', '--json'], {}, 60_000)
      expect(r.code, r.stderr).toBe(0)
      const job = JSON.parse(r.stdout) as JobJson
      expect(job.token_ids).toEqual(g.token_ids)
      expect(job.members).toHaveLength(size)
      expect(job.members.find((m) => m.leader)?.node_id).toBe(nodeIds.get(leader))
    }
  }

  beforeAll(async () => {
    lab = NetnsLab.create(3)
    const [admin, ...members] = lab.nodes as [LabNode, ...LabNode[]]
    pool = await createAdmin(lab, admin)
    for (const m of members) {
      await joinMember(lab, m, pool, pool.joinToken)
      await lab.meshOk(m, ['start'])
    }
    for (const n of lab.nodes) nodeIds.set(n, (await callAgent<AgentStatus>(n.home, 'GET', '/v1/status')).nodeId)
    await ringIs(lab.nodes)
  }, 90_000)

  afterAll(() => { lab?.destroy() })

  it('a ring of three gives the golden greedy ids for every golden prompt, led by a member or by the admin', async () => {
    onTestFailed(() => { console.error(lab.logs()) })
    await goldenOnRing(lab.node(1), 3)
    await goldenOnRing(lab.node(0), 3)
  }, 60_000)

  it('kill -9 of one of three members mid-generation (256 tokens, greedy): the job fails over and the text is the golden one', async () => {
    onTestFailed(() => { console.error(lab.logs()) })
    const g = goldenRun('Once upon a time', 256)
    await expectFailoverToGolden(async (onStdout) => await streamInference(lab.node(0), ['--prompt', g.prompt, '--max-tokens', g.maxTokens, '--temperature', '0'], onStdout), lab.node(2).home, g.stdout_exact)
  }, 60_000)

  it('the two members left give the golden ids too', async () => {
    onTestFailed(() => { console.error(lab.logs()) })
    await ringIs([lab.node(0), lab.node(1)])
    await goldenOnRing(lab.node(1), 2)
  }, 60_000)
})

/** `mesh inference ARGS` in a node's namespace; `onStdout` sees the text as it streams. */
async function streamInference (node: LabNode, args: string[], onStdout: (soFar: string) => void): Promise<RunResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', node.ns, process.execPath, MESH_JS, 'inference', ...args], {
      env: { ...process.env, MESH_HOME: node.home }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); onStdout(stdout) })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8') })
    child.on('error', reject)
    child.on('close', (code) => { resolve({ code: code ?? 1, stdout, stderr }) })
  })
}
