import { execFile } from 'node:child_process'
import fs from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { readPid } from '../../src/agent/pidfile.js'
import { killAgents, MESH_JS, startAgents } from '../helpers/agent-procs.js'
import { tempRoot, testPool, type TestDevice } from '../helpers/pools.js'
import { waitForRing } from '../helpers/openai-ring.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'

/*
 * GGUF models across rings of agents (child processes on 127.0.0.1, each its own MESH_HOME): the
 * same token ids as one device with the same kernels (--local), chat rendered by the leader, and a
 * member killed mid-generation failed over without changing the text.
 */
const homes: string[] = []
const dirs: string[] = []
afterEach(() => {
  killAgents(homes.splice(0))
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

interface Outcome { code: number, stdout: string, stderr: string }
async function mesh (home: string, args: string[], onStdout?: (soFar: string) => void): Promise<Outcome> {
  return await new Promise((resolve) => {
    const child = execFile(process.execPath, [MESH_JS, ...args], { env: { ...process.env, MESH_HOME: home }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
    })
    let soFar = ''
    child.stdout?.on('data', (c: Buffer) => { soFar += c.toString('utf8'); onStdout?.(soFar) })
  })
}

async function ring (n: number, model: string): Promise<TestDevice[]> {
  const root = tempRoot(); dirs.push(root)
  const p = testPool(root, Array.from({ length: n }, (_, i) => i === 0 ? 'admin' : `m${i}`))
  const devs = [p.admin, ...p.members]
  await startAgents(devs.map((d) => d.home), homes, ['--model', model])
  await waitForRing(devs, n)
  return devs
}

interface Result { token_ids: number[], prompt_token_ids: number[], text: string, kind: string, members: Array<{ heads: number, hidden_units: number, leader: boolean }> }
const json = (r: Outcome): Result => { expect(r.code, r.stderr).toBe(0); return JSON.parse(r.stdout) as Result }

describe.skipIf(SHARED_DIR === null)('GGUF models across a ring of agents', () => {
  it('two members on llama3-test Q4_K_M: the single device\'s ids for a prompt and a chat; ring-status says what each holds', async () => {
    const model = sharedPath('models/gguf/llama3-test.q4_k_m.gguf')
    const devs = await ring(2, model)
    const greedy = ['--max-tokens', '24', '--temperature', '0', '--json']
    const local = json(await mesh(devs[0].home, ['inference', '--local', '--model', model, '--prompt', 'The capital of France is', ...greedy]))
    const pooled = json(await mesh(devs[1].home, ['inference', '--prompt', 'The capital of France is', ...greedy]))
    // token for token: the members' partials add up to one device's sums exactly (forward.ts, matmulUnits)
    expect(pooled.token_ids).toEqual(local.token_ids)
    expect(pooled.text).toBe(local.text)
    expect(pooled.members).toHaveLength(2)
    // 8 heads of 32 make one Q4_K block of the output projection: one member takes attention, both take FFN blocks
    expect(pooled.members.map((m) => m.heads).sort()).toEqual([0, 8])
    expect(pooled.members.every((m) => m.hidden_units > 0)).toBe(true)

    const chat = ['--chat', 'Hello!', '--system', 'Be brief.']
    const localChat = json(await mesh(devs[0].home, ['inference', '--local', '--model', model, ...chat, ...greedy]))
    const pooledChat = json(await mesh(devs[0].home, ['inference', ...chat, ...greedy]))
    expect(pooledChat.kind).toBe('chat')
    expect(pooledChat.token_ids).toEqual(localChat.token_ids)
    expect(pooledChat.text).toBe(localChat.text)

    const status = await mesh(devs[0].home, ['ring-status'])
    expect(status.stdout).toMatch(/8 heads, \d+ ffn, \d+ vocab rows/)
    expect(status.stdout).toMatch(/0 heads, \d+ ffn, \d+ vocab rows/)
    const stats = await mesh(devs[0].home, ['inference-stats'])
    expect(stats.stdout).toMatch(/chat job [0-9a-f]+/)
  }, 180_000)

  it('three members on qwen2-test Q8_0 (2 kv heads): more members than kv heads, the same ids as one device', async () => {
    const model = sharedPath('models/gguf/qwen2-test.q8_0.gguf')
    const devs = await ring(3, model)
    const args = ['--prompt', 'Hello <|im_start|>', '--max-tokens', '24', '--temperature', '0', '--json']
    const local = json(await mesh(devs[0].home, ['inference', '--local', '--model', model, ...args]))
    const pooled = json(await mesh(devs[2].home, ['inference', ...args]))
    expect(pooled.token_ids).toEqual(local.token_ids)
    expect(pooled.members.map((m) => m.heads).reduce((a, b) => a + b)).toBe(4)
    expect(pooled.members.every((m) => m.heads > 0)).toBe(true)
  }, 180_000)

  it('three members on qwen3-test Q4_K_M: kill -9 of one mid-generation fails over and the text is unchanged', async () => {
    const model = sharedPath('models/gguf/qwen3-test.q4_k_m.gguf')
    const devs = await ring(3, model)
    const args = ['--prompt', 'Once upon a time', '--max-tokens', '160', '--temperature', '0']
    const local = await mesh(devs[0].home, ['inference', '--local', '--model', model, ...args])
    expect(local.code, local.stderr).toBe(0)
    let killed = false
    const r = await mesh(devs[0].home, ['inference', ...args], (soFar) => {
      if (killed || soFar.length < 120) return
      killed = true
      process.kill(readPid(devs[2].home)!, 'SIGKILL')
    })
    expect(killed).toBe(true)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(local.stdout)
    expect(r.stderr).toMatch(/^mesh: notice: a member was lost at position \d+ .*re-planning on the next ring epoch$/m)
    expect(r.stderr).toMatch(/, 2 members, 1 failover\n/)
  }, 240_000)
})
