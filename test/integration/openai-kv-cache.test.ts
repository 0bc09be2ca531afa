import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { InferenceStats } from '../../src/agent/inference/events.js'
import { mesh } from '../helpers/agent-procs.js'
import { jsonOf, postJson, startApiRing, type ApiRing } from '../helpers/openai-ring.js'
import { tempRoot } from '../helpers/pools.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'

/*
 * A multi-turn chat through the API of a 2-member GGUF ring: the second turn re-sends the first's
 * history, the ring still holds its KV cache (the job kept between requests, on both members), and
 * only the new tokens are fed; the reply is one device's, token for token.
 */
const MODEL = sharedPath('models/gguf/llama3-test.q4_k_m.gguf')
const MAX = 16
const skip = SHARED_DIR === null
let r: ApiRing
beforeAll(async () => { if (!skip) r = await startApiRing(2, ['--model', MODEL]) }, 120_000)
afterAll(() => { r?.stop() })

type Message = { role: 'system' | 'user' | 'assistant', content: string }
const chat = async (messages: Message[]): Promise<any> => {
  const res = await postJson(r.base, '/v1/chat/completions', { messages, temperature: 0, max_tokens: MAX })
  expect(res.status, res.body.toString()).toBe(200)
  return jsonOf(res)
}
/** One device's reply to the same messages (mesh inference --local), the reference for the ring's. */
const local = async (messages: Message[]): Promise<string> => {
  const file = path.join(tempRoot(), 'messages.json')
  fs.writeFileSync(file, JSON.stringify(messages))
  const out = await mesh(r.devs[0].home, ['inference', '--local', '--model', MODEL, '--messages', file, '--max-tokens', String(MAX), '--temperature', '0', '--json'])
  expect(out.code, out.stderr).toBe(0)
  return JSON.parse(out.stdout).text
}
const stats = async (home: string): Promise<InferenceStats> => await callAgent<InferenceStats>(home, 'GET', '/v1/inference-stats')

describe.skipIf(skip)('the KV cache of the last chat kept on the ring', () => {
  it('a second turn feeds only its new tokens (cached_tokens), keeps the job on the member between turns, and answers as one device does', async () => {
    const first: Message[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Name a colour.' }]
    const one = await chat(first)
    const reply = one.choices[0].message.content as string
    expect(reply).toBe(await local(first))

    // between the turns the member still serves the kept job: its cache is there for the next one
    expect((await stats(r.devs[1].home)).active.serving).toHaveLength(1)

    const second: Message[] = [...first, { role: 'assistant', content: reply }, { role: 'user', content: 'And another?' }]
    const two = await chat(second)
    const cached = two.usage.prompt_tokens_details.cached_tokens as number
    // at least the first turn's prompt (the reply's tokens may re-tokenize differently) and never the whole prompt
    expect(cached).toBeGreaterThanOrEqual(one.usage.prompt_tokens)
    expect(cached).toBeLessThan(two.usage.prompt_tokens)
    expect(two.timings.prompt_n).toBe(two.usage.prompt_tokens)
    expect(two.choices[0].message.content).toBe(await local(second))
    console.log(`kv cache: the second turn fed ${two.usage.prompt_tokens - cached} of its ${two.usage.prompt_tokens} prompt tokens (${cached} cached); prompt ${two.timings.prompt_ms} ms against ${one.timings.prompt_ms} ms for the first turn's ${one.usage.prompt_tokens}`)

    // another conversation shares at most the template's opening: the rest is fed anew, and the answer is still one device's
    const other: Message[] = [{ role: 'user', content: 'Count to three.' }]
    const three = await chat(other)
    expect(three.usage.prompt_tokens_details.cached_tokens).toBeLessThan(one.usage.prompt_tokens)
    expect(three.choices[0].message.content).toBe(await local(other))
    expect((await stats(r.devs[1].home)).active.serving).toHaveLength(1) // one kept job, not one per conversation
  }, 180_000)
})
