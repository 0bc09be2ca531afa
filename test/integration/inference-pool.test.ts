import { execFile } from 'node:child_process'
import fs from 'node:fs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { RingReport } from '../../src/agent/net/pool-ring.js'
import { killAgents, mesh, MESH_JS, startAgents } from '../helpers/agent-procs.js'
import { expectFailoverToGolden, type Outcome } from '../helpers/failover.js'
import { tempRoot, testPool, type TestDevice } from '../helpers/pools.js'

const golden = JSON.parse(fs.readFileSync('test/fixtures/golden/stories260K-greedy.json', 'utf8')) as {
  generations: Array<{ prompt: string, steps: number, prompt_token_ids: number[], token_ids: number[], stdout_exact: string }>
}
const goldenCase = (steps: number) => {
  const g = golden.generations.find((x) => x.prompt === 'Once upon a time' && x.steps === steps)
  if (g === undefined) throw new Error('golden case missing')
  return { ...g, maxTokens: String(g.steps - g.prompt_token_ids.length + 1) }
}

const homes: string[] = []
const dirs: string[] = []
afterEach(() => {
  killAgents(homes.splice(0))
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})


async function waitForRing (devs: TestDevice[]): Promise<void> {
  await vi.waitFor(async () => {
    for (const d of devs) {
      const [r] = await callAgent<RingReport[]>(d.home, 'GET', '/v1/ring')
      expect(r?.topology.members).toHaveLength(devs.length)
      expect(r?.converged).toBe(true)
    }
  }, { timeout: 60_000, interval: 200 })
}

async function pool (n: number): Promise<TestDevice[]> {
  const root = tempRoot(); dirs.push(root)
  const p = testPool(root, Array.from({ length: n }, (_, i) => i === 0 ? 'admin' : `m${i}`))
  const devs = [p.admin, ...p.members]
  await startAgents(devs.map((d) => d.home), homes)
  await waitForRing(devs)
  return devs
}

/** `mesh inference` as a child process; `onStdout` sees the text as it streams. */
async function infer (home: string, args: string[], onStdout?: (soFar: string) => void): Promise<Outcome> {
  return await new Promise((resolve) => {
    const child = execFile(process.execPath, [MESH_JS, 'inference', ...args], { env: { ...process.env, MESH_HOME: home }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
    })
    let soFar = ''
    child.stdout?.on('data', (c: Buffer) => { soFar += c.toString('utf8'); onStdout?.(soFar) })
  })
}

describe('mesh inference across agents (child processes on 127.0.0.1)', () => {
  it('two members stream the golden greedy text, then per-member figures; --json and inference-stats agree', async () => {
    const devs = await pool(2)
    const g = goldenCase(64)
    const r = await infer(devs[1].home, ['--prompt', g.prompt, '--max-tokens', g.maxTokens, '--temperature', '0'])
    expect(r.stderr).toMatch(/^achieved tok\/s: [\d.]+, time to first token: [\d.]+ ms, \d+ tokens \(max-tokens\), 2 members\n/)
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(g.stdout_exact)
    expect(r.stderr.match(/columns \[\d+, \d+\) {2}\d+ heads, \d+ FFN units {2}compute [\d.]+ ms {2}network [\d.]+ ms/g)).toHaveLength(2)

    const j = await infer(devs[0].home, ['--prompt', g.prompt, '--max-tokens', g.maxTokens, '--temperature', '0', '--json'])
    expect(j.code).toBe(0)
    const result = JSON.parse(j.stdout) as { token_ids: number[], members: Array<{ node_id: string, leader: boolean, positions: number }> }
    expect(result.token_ids).toEqual(g.token_ids)
    expect(result.members.map((m) => m.node_id).sort()).toEqual(devs.map((d) => d.nodeId).sort())
    expect(result.members.find((m) => m.leader)?.node_id).toBe(devs[0].nodeId)

    const stats = JSON.parse((await mesh(devs[0].home, ['inference-stats', '--json'])).stdout) as { totals: { jobs: number }, jobs: Array<{ token_ids: number[] }> }
    expect(stats.totals.jobs).toBe(1)
    expect(stats.jobs[0].token_ids).toEqual(g.token_ids)
  }, 180_000)

  it('three members: the golden ids; kill -9 of one mid-generation fails over and the text is unchanged', async () => {
    const devs = await pool(3)
    const g = goldenCase(256)
    await expectFailoverToGolden(async (onStdout) => await infer(devs[0].home, ['--prompt', g.prompt, '--max-tokens', g.maxTokens, '--temperature', '0'], onStdout), devs[2].home, g.stdout_exact)
  }, 240_000)

  it('explains what is wrong: no agent, no pool, a prompt too long', async () => {
    const root = tempRoot(); dirs.push(root)
    const p = testPool(root, ['admin'])
    const down = await infer(p.admin.home, ['--prompt', 'hi'])
    expect(down).toMatchObject({ code: 1, stdout: '' })
    expect(down.stderr).toMatch(/^mesh: the mesh agent is not running for .*; start it with `mesh start`\n$/)
    await startAgents([p.admin.home], homes)
    await waitForRing([p.admin])
    const long = await infer(p.admin.home, ['--prompt', 'word '.repeat(600), '--max-tokens', '4'])
    expect(long).toMatchObject({ code: 2, stdout: '' })
    expect(long.stderr).toMatch(/^mesh: the prompt is \d+ tokens with BOS, longer than the model's context of 512; shorten it\n$/)
    const badPool = await infer(p.admin.home, ['--prompt', 'hi', '--pool-id', 'ffffffffffffffff'])
    expect(badPool.code).not.toBe(0)
    expect(badPool.stderr).toMatch(/^mesh: .*pool/)
  }, 120_000)
})
