import { createOpenAICompatible } from '@ai-sdk/openai-compatible'
import { ChatOpenAI } from '@langchain/openai'
import { generateText, streamText } from 'ai'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readPid } from '../../src/agent/pidfile.js'
import { mesh } from '../helpers/agent-procs.js'
import { jsonOf, postJson, rawRequest, sseEvents, startApiRing, type ApiRing } from '../helpers/openai-ring.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'

/*
 * Real OpenAI clients (the openai SDK, the ai SDK's openai-compatible provider, LangChain) against
 * the API of a 2-member ring serving a GGUF chat model: each gets the text mesh inference gives at
 * temperature 0; the chat stream's raw bytes; kill -9 of the other member mid-stream.
 */
const MODEL = 'llama3-test.q4_k_m'
const SYSTEM = 'Be brief.'
const USER = 'Hello!'
const MAX = 24
let r: ApiRing
let expected: string
const skip = SHARED_DIR === null

beforeAll(async () => {
  if (skip) return
  r = await startApiRing(2, ['--model', sharedPath(`models/gguf/${MODEL}.gguf`)])
  const cli = await mesh(r.devs[1].home, ['inference', '--chat', USER, '--system', SYSTEM, '--max-tokens', String(MAX), '--temperature', '0', '--json'])
  expect(cli.code, cli.stderr).toBe(0)
  expected = JSON.parse(cli.stdout).text
  expect(expected.length).toBeGreaterThan(10)
}, 120_000)
afterAll(() => { r?.stop() })

const messages = [{ role: 'system' as const, content: SYSTEM }, { role: 'user' as const, content: USER }]

describe.skipIf(skip)('OpenAI clients against a 2-member GGUF ring', () => {
  it('openai: create, create with stream (for await), and .stream() with finalChatCompletion()', async () => {
    const client = new OpenAI({ baseURL: `${r.base}/v1`, apiKey: 'unused', maxRetries: 0 })
    const models = await client.models.list()
    expect(models.data.map((m) => m.id)).toEqual([MODEL])

    const done = await client.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: MAX })
    expect(done.choices[0]?.message).toMatchObject({ role: 'assistant', content: expected })
    expect(done.usage?.completion_tokens).toBeGreaterThan(0)
    expect(done.usage?.total_tokens).toBe((done.usage?.prompt_tokens ?? 0) + (done.usage?.completion_tokens ?? 0))

    let streamed = ''
    let chunks = 0
    let usage: OpenAI.CompletionUsage | undefined | null
    for await (const chunk of await client.chat.completions.create({ model: MODEL, messages, temperature: 0, max_completion_tokens: MAX, stream: true, stream_options: { include_usage: true } })) {
      chunks++
      streamed += chunk.choices[0]?.delta.content ?? ''
      if (chunk.usage !== null && chunk.usage !== undefined) usage = chunk.usage
    }
    expect(streamed).toBe(expected)
    expect(chunks).toBeGreaterThan(5)
    // the same counts; the same request again finds its prompt, all but the last token, in the ring's kept cache
    expect({ ...usage, prompt_tokens_details: undefined }).toEqual({ ...done.usage, prompt_tokens_details: undefined })
    expect(usage?.prompt_tokens_details?.cached_tokens).toBe((done.usage?.prompt_tokens ?? 0) - 1)

    const stream = client.chat.completions.stream({ model: MODEL, messages, temperature: 0, max_tokens: MAX })
    const deltas: string[] = []
    stream.on('content', (delta) => { deltas.push(delta) })
    const final = await stream.finalChatCompletion()
    expect(final.choices[0]?.message.content).toBe(expected)
    expect(deltas.join('')).toBe(expected)

    const completion = await client.completions.create({ model: MODEL, prompt: 'The capital of France is', temperature: 0, max_tokens: MAX })
    const cli = JSON.parse((await mesh(r.devs[0].home, ['inference', '--prompt', 'The capital of France is', '--max-tokens', String(MAX), '--temperature', '0', '--json'])).stdout)
    expect('The capital of France is' + (completion.choices[0]?.text ?? '')).toBe(cli.text)
  }, 120_000)

  it('ai SDK (openai-compatible provider): generateText and streamText', async () => {
    const mesh = createOpenAICompatible({ name: 'mesh', baseURL: `${r.base}/v1`, apiKey: 'unused', includeUsage: true })
    const g = await generateText({ model: mesh.chatModel(MODEL), system: SYSTEM, prompt: USER, temperature: 0, maxOutputTokens: MAX, maxRetries: 0 })
    expect(g.text).toBe(expected)
    expect(g.usage.outputTokens).toBeGreaterThan(0)
    const s = streamText({ model: mesh.chatModel(MODEL), system: SYSTEM, prompt: USER, temperature: 0, maxOutputTokens: MAX, maxRetries: 0 })
    let parts = 0
    let text = ''
    for await (const t of s.textStream) { parts++; text += t }
    expect(text).toBe(expected)
    expect(parts).toBeGreaterThan(5)
    expect((await s.usage).outputTokens).toBe(g.usage.outputTokens)
  }, 120_000)

  it('LangChain ChatOpenAI: invoke and stream', async () => {
    const llm = new ChatOpenAI({ model: MODEL, temperature: 0, maxTokens: MAX, apiKey: 'unused', maxRetries: 0, configuration: { baseURL: `${r.base}/v1` } })
    const answer = await llm.invoke([['system', SYSTEM], ['human', USER]])
    expect(answer.content).toBe(expected)
    let text = ''
    for await (const chunk of await llm.stream([['system', SYSTEM], ['human', USER]])) text += typeof chunk.content === 'string' ? chunk.content : ''
    expect(text).toBe(expected)
  }, 120_000)

  it('the chat stream\'s bytes: role in the first delta only, content deltas, one finish chunk with an empty delta, usage, [DONE]', async () => {
    const res = await postJson(r.base, '/v1/chat/completions', { model: MODEL, messages, temperature: 0, max_tokens: MAX, stream: true, stream_options: { include_usage: true } })
    expect(res.headers['content-type']).toBe('text/event-stream')
    const { events } = sseEvents(res.body)
    expect(events[0].choices[0]).toEqual({ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null })
    expect(events[0].object).toBe('chat.completion.chunk')
    const usage = events.pop()
    expect(usage.choices).toEqual([])
    expect(usage.usage.completion_tokens).toBeGreaterThan(0)
    const finish = events.pop()
    expect(finish.choices[0].delta).toEqual({})
    expect(['stop', 'length']).toContain(finish.choices[0].finish_reason)
    expect(events.slice(1).every((e) => !('role' in e.choices[0].delta) && typeof e.choices[0].delta.content === 'string' && e.choices[0].finish_reason === null && e.usage === null)).toBe(true)
    expect(events.map((e) => e.choices[0].delta.content).join('')).toBe(expected)
    // content as an array of text parts is the same chat
    const parts = jsonOf(await postJson(r.base, '/chat/completions', { model: MODEL, temperature: 0, max_tokens: MAX, messages: [{ role: 'system', content: [{ type: 'text', text: SYSTEM }] }, { role: 'user', content: [{ type: 'text', text: 'Hel' }, { type: 'text', text: 'lo!' }] }] }))
    expect(parts.choices[0].message.content).toBe(expected)
  }, 120_000)

  it('kill -9 of the other member mid-stream: the stream completes through failover with the same text', async () => {
    const body = { model: MODEL, prompt: 'Once upon a time', temperature: 0, max_tokens: 200 }
    const whole = jsonOf(await postJson(r.base, '/v1/completions', body))
    let killed = false
    const res = await rawRequest(r.base, 'POST', '/v1/completions', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: true }),
      onData: (soFar) => {
        if (killed || soFar.toString().split('data: ').length < 20) return
        killed = true
        process.kill(readPid(r.devs[1].home)!, 'SIGKILL')
      }
    })
    expect(killed).toBe(true)
    const { events } = sseEvents(res.body)
    expect(events.some((e) => 'error' in e)).toBe(false)
    expect(events.map((e) => e.choices[0].text).join('')).toBe(whole.choices[0].text)
  }, 120_000)
})
