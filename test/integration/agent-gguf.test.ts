import { execFile } from 'node:child_process'
import fs from 'node:fs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { RingReport } from '../../src/agent/net/pool-ring.js'
import { agentStatus, killAgents, mesh, MESH_JS, startAgents } from '../helpers/agent-procs.js'
import { tempRoot, testPool } from '../helpers/pools.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'

const homes: string[] = []
const dirs: string[] = []
afterEach(() => {
  killAgents(homes.splice(0))
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

async function run (home: string, args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [MESH_JS, ...args], { env: { ...process.env, MESH_HOME: home }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
    })
  })
}

describe.skipIf(SHARED_DIR === null)('mesh start --model F.gguf (a ring of one member)', () => {
  it('serves the file: the heartbeat\'s model id covers it, and `mesh inference` through the agent equals --local', async () => {
    const model = sharedPath('models/gguf/qwen2-test.q8_0.gguf')
    const root = tempRoot(); dirs.push(root)
    const { admin } = testPool(root, ['admin'])
    await startAgents([admin.home], homes, ['--model', model])
    await vi.waitFor(async () => {
      const [r] = await callAgent<RingReport[]>(admin.home, 'GET', '/v1/ring')
      expect(r?.converged).toBe(true)
    }, { timeout: 60_000, interval: 200 })
    const status = await agentStatus(admin.home) as { model: { checkpoint: string, checkpointSha256: string, id: string } }
    expect(status.model.checkpoint).toBe(model)
    expect(status.model.checkpointSha256).toMatch(/^[0-9a-f]{64}$/)

    const args = ['--prompt', 'Hello <|im_start|>', '--max-tokens', '12', '--temperature', '0', '--json']
    const pooled = await run(admin.home, ['inference', ...args])
    expect(pooled.code, pooled.stderr).toBe(0)
    const local = await run(admin.home, ['inference', '--local', '--model', model, ...args])
    expect(local.code, local.stderr).toBe(0)
    const p = JSON.parse(pooled.stdout) as { token_ids: number[], text: string, members: unknown[], model: { id: string } }
    const l = JSON.parse(local.stdout) as { token_ids: number[], text: string }
    expect(p.token_ids).toEqual(l.token_ids)
    expect(p.text).toBe(l.text)
    expect(p.members).toHaveLength(1)
    expect(p.model.id).toBe(status.model.id)

    const streamed = await run(admin.home, ['inference', ...args.slice(0, -1)])
    expect(streamed.stdout).toBe(l.text + '\n')
  }, 120_000)

  it('refuses --tokenizer with a GGUF model on one line, before starting', async () => {
    const root = tempRoot(); dirs.push(root)
    const { admin } = testPool(root, ['admin'])
    const r = await mesh(admin.home, ['start', '--model', sharedPath('models/gguf/qwen2-test.q8_0.gguf'), '--tokenizer', 'models/stories260K/tok512.bin.x'])
    expect(r.code).not.toBe(0)
    expect(r.stderr.trim()).toMatch(/^mesh: .*(--tokenizer does not apply to GGUF|tok512\.bin\.x)/)
  })
})
