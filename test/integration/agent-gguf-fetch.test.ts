import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { AgentStatus } from '../../src/agent/agent.js'
import type { RingReport } from '../../src/agent/net/pool-ring.js'
import { readPid } from '../../src/agent/pidfile.js'
import { hashFile } from '../../src/inference/files.js'
import { modelIdentity } from '../../src/inference/identity.js'
import { freeUdpPort, killAgents, logOf, mesh, MESH_JS } from '../helpers/agent-procs.js'
import { tempRoot, testPool, type TestDevice } from '../helpers/pools.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'

/*
 * `mesh start --model-sha256 HEX` with no --model and no tokenizer: the member fetches the GGUF
 * file from a member that announces it over /mesh/model/1.0.0, refusing one that sends something
 * that is not a GGUF file, keeps it as MESH_HOME/models/<sha256>.gguf, and serves it in a ring.
 */
const homes: string[] = []
const dirs: string[] = []
afterEach(() => {
  killAgents(homes.splice(0))
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

interface Outcome { code: number, stdout: string, stderr: string }
/** `mesh` with a longer timeout than the helper's: a start that waits for a model fetch, a ring job. */
async function execMesh (home: string, args: string[]): Promise<Outcome> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [MESH_JS, ...args], { env: { ...process.env, MESH_HOME: home, MESH_BEACON_INTERFACES: '' }, timeout: 120_000 },
      (err, stdout, stderr) => { resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }) })
  })
}

describe.skipIf(SHARED_DIR === null)('a GGUF model fetched from the pool', () => {
  it('a member started with only --model-sha256 fetches llama3-test Q4_K_M, refusing a member that sends other bytes, and a ring of two gives --local\'s ids', async () => {
    const model = sharedPath('models/gguf/llama3-test.q4_k_m.gguf')
    const sha256 = await hashFile(model)
    const modelId = modelIdentity(sha256, sha256).id
    const root = tempRoot(); dirs.push(root)
    const pool = testPool(root, ['admin', 'liar', 'fresh'])
    const [liar, fresh] = pool.members as [TestDevice, TestDevice]
    const ports = await Promise.all([0, 1, 2].map(async () => await freeUdpPort()))
    const startArgs = (i: number, extra: string[]): string[] =>
      ['start', '--beacon-port', String(ports[i]), ...ports.filter((_, j) => j !== i).flatMap((p) => ['--bootstrap', `127.0.0.1:${p}`]), ...extra]
    homes.push(pool.admin.home, liar.home, fresh.home)

    // the liar hashed the right file at start, then it was overwritten with bytes that are no GGUF file
    const lie = path.join(root, 'lie.gguf')
    fs.copyFileSync(model, lie)
    const started = await mesh(liar.home, startArgs(1, ['--model', lie, '--threads', '1']))
    expect(started.code, started.stderr).toBe(0)
    fs.writeFileSync(lie, Buffer.alloc(fs.statSync(model).size, 0x5a))

    const fetching = execMesh(fresh.home, startArgs(2, ['--model-sha256', sha256, '--threads', '1']))
    await vi.waitFor(() => { expect(logOf(fresh.home)).toContain('refused the model a member sent; not asking it again') }, { timeout: 40_000, interval: 100 })
    expect(logOf(fresh.home)).toMatch(new RegExp(`"from":"${liar.nodeId}","reason":"not-a-model"`))
    expect(fs.readdirSync(path.join(fresh.home, 'models'))).toEqual([]) // nothing kept, not even the temporary file
    const waiting = await callAgent<AgentStatus>(fresh.home, 'GET', '/v1/status')
    expect(waiting.model).toBeNull()
    expect(waiting.modelFetch).toMatchObject({ sha256, state: 'waiting', drops: { 'not-a-model': 1, 'wrong-hash': 0 } })
    // the liar leaves before the ring runs a job: its file would not load
    await mesh(liar.home, ['stop'])

    const admin = await mesh(pool.admin.home, startArgs(0, ['--model', model, '--threads', '1']))
    expect(admin.code, admin.stderr).toBe(0)
    const r = await fetching
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`model ${sha256.slice(0, 12)} is not here; waiting for a pool member that serves it`)
    expect(r.stderr).toContain(`could not use ${liar.nodeId}: not-a-model; trying another member`)
    expect(r.stderr).toMatch(new RegExp(`fetching model ${sha256.slice(0, 12)} from ${pool.admin.nodeId}: \\d+% `))
    expect(r.stderr).toContain(`model ${sha256.slice(0, 12)} fetched from ${pool.admin.nodeId} and verified (34.9 MiB); serving model ${modelId.slice(0, 12)}`)
    const dest = path.join(fresh.home, 'models', `${sha256}.gguf`)
    expect(fs.readFileSync(dest).equals(fs.readFileSync(model))).toBe(true)
    expect(fs.readdirSync(path.join(fresh.home, 'models'))).toEqual([`${sha256}.gguf`])
    expect((await callAgent<AgentStatus>(fresh.home, 'GET', '/v1/status')).model).toMatchObject({ id: modelId, checkpoint: dest, checkpointSha256: sha256 })

    await vi.waitFor(async () => {
      for (const d of [pool.admin, fresh]) {
        const [report] = await callAgent<RingReport[]>(d.home, 'GET', '/v1/ring')
        expect(report?.topology.members.map((m) => m.nodeId).sort()).toEqual([pool.admin.nodeId, fresh.nodeId].sort())
        expect(report?.models?.members).toEqual({ [pool.admin.nodeId]: modelId, [fresh.nodeId]: modelId })
        expect(report?.converged).toBe(true)
      }
    }, { timeout: 60_000, interval: 200 })
    const args = ['--prompt', 'The capital of France is', '--max-tokens', '24', '--temperature', '0', '--json']
    const local = JSON.parse((await execMesh(fresh.home, ['inference', '--local', '--model', dest, ...args])).stdout) as { token_ids: number[] }
    const pooled = await execMesh(fresh.home, ['inference', ...args])
    expect(pooled.code, pooled.stderr).toBe(0)
    const result = JSON.parse(pooled.stdout) as { token_ids: number[], prompt_token_ids: number[], members: unknown[] }
    expect(result.members).toHaveLength(2)
    expect(result.token_ids).toEqual(local.token_ids) // one device's ids, token for token

    // restarted, it serves the fetched copy at once, checking it against the sha256 again
    process.kill(readPid(fresh.home)!, 'SIGTERM')
    await vi.waitFor(() => { expect(readPid(fresh.home)).toBeUndefined() }, { timeout: 10_000, interval: 50 })
    const again = await mesh(fresh.home, startArgs(2, ['--model-sha256', sha256, '--json']))
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ model: { id: modelId, checkpoint: dest } })
  }, 240_000)
})
