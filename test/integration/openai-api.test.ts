import http from 'node:http'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { InferenceStats } from '../../src/agent/inference/events.js'
import { mesh } from '../helpers/agent-procs.js'
import { freeTcpPort, jsonOf, postJson, rawRequest, sseEvents, startApiRing, type ApiRing } from '../helpers/openai-ring.js'
import { tempRoot, testDevice } from '../helpers/pools.js'

/*
 * The OpenAI-compatible API of an agent in a real 2-member ring on 127.0.0.1 (child processes),
 * serving the bundled llama2.c model stories260K: raw bytes of the stream, every error status,
 * keys switched on and off, a disconnect cancelling the job on both members, N+1 at once.
 */
let r: ApiRing
beforeAll(async () => { r = await startApiRing(2, []) }, 90_000)
afterAll(() => { r?.stop() })

const PROMPT = 'Once upon a time'
const stats = async (home: string): Promise<InferenceStats> => await callAgent<InferenceStats>(home, 'GET', '/v1/inference-stats')

describe('OpenAI API on a 2-member ring (llama2.c model)', () => {
  it('lists the model, says it is healthy, and answers a completion with the text mesh inference prints', async () => {
    const models = jsonOf(await rawRequest(r.base, 'GET', '/v1/models'))
    expect(models).toMatchObject({ object: 'list', data: [{ id: 'stories260K', object: 'model', owned_by: 'mesh' }] })
    expect(jsonOf(await rawRequest(r.base, 'GET', '/models/stories260K')).id).toBe('stories260K')
    const health = await rawRequest(r.base, 'GET', '/health')
    expect(health.status).toBe(200)
    expect(jsonOf(health)).toMatchObject({ status: 'ok', model: 'stories260K', rings: [{ members: 2, converged: true }] })

    const cli = JSON.parse((await mesh(r.devs[1].home, ['inference', '--prompt', PROMPT, '--max-tokens', '40', '--temperature', '0', '--json'])).stdout)
    const res = await postJson(r.base, '/v1/completions', { model: 'stories260K', prompt: PROMPT, max_tokens: 40, temperature: 0 })
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    const body = jsonOf(res)
    expect(body).toMatchObject({ object: 'text_completion', model: 'stories260K', choices: [{ index: 0, finish_reason: 'length', logprobs: null }] })
    // mesh inference prints the prompt first, as llama2.c does; the API gives the completion
    expect(body.choices[0].text.length).toBeGreaterThan(20)
    expect(cli.text.endsWith(body.choices[0].text)).toBe(true)
    expect(body.usage).toEqual({ prompt_tokens: cli.prompt_token_ids.length, completion_tokens: 40, total_tokens: cli.prompt_token_ids.length + 40, prompt_tokens_details: { cached_tokens: 0 } })
    expect(body.timings).toMatchObject({ prompt_n: cli.prompt_token_ids.length, predicted_n: 40 })
    expect(body.timings.predicted_per_second).toBeGreaterThan(0)
  }, 60_000)

  it('streams exactly as strict clients parse it: headers at once, LF only, one finish chunk, usage last, [DONE]', async () => {
    let headersAt = 0
    const t0 = performance.now()
    const res = await rawRequest(r.base, 'POST', '/v1/completions', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: PROMPT, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } }),
      onHeaders: () => { headersAt = performance.now() - t0 }
    })
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('text/event-stream')
    expect(headersAt).toBeGreaterThan(0)
    const { events } = sseEvents(res.body)
    const usage = events.pop()
    expect(usage).toMatchObject({ object: 'text_completion', choices: [], usage: { completion_tokens: 12 } })
    const finish = events.pop()
    expect(finish.choices).toEqual([{ index: 0, text: '', logprobs: null, finish_reason: 'length' }])
    expect(finish.usage).toBeNull()
    expect(finish.timings.predicted_n).toBe(12)
    expect(events.length).toBeGreaterThanOrEqual(2)
    for (const e of events) {
      expect(e.usage).toBeNull()
      expect(e.choices[0].finish_reason).toBeNull()
      expect(new Set(events.map((x) => x.id)).size).toBe(1)
    }
    const whole = jsonOf(await postJson(r.base, '/v1/completions', { prompt: PROMPT, max_tokens: 12, temperature: 0 }))
    expect(events.map((e) => e.choices[0].text).join('')).toBe(whole.choices[0].text)

    // without include_usage: no usage fields at all
    const plain = sseEvents((await postJson(r.base, '/completions', { prompt: PROMPT, max_tokens: 3, temperature: 0, stream: true })).body).events
    expect(plain.every((e) => !('usage' in e))).toBe(true)
    expect(plain.filter((e) => e.choices[0].finish_reason !== null)).toHaveLength(1)
  }, 60_000)

  it('cuts the text before a stop string (never sending it) and counts the tokens it took', async () => {
    const whole = jsonOf(await postJson(r.base, '/v1/completions', { prompt: PROMPT, max_tokens: 40, temperature: 0 })).choices[0].text as string
    const stop = whole.slice(whole.indexOf(' ', 10), whole.indexOf(' ', 10) + 4)
    const cut = whole.slice(0, whole.indexOf(stop))
    const res = jsonOf(await postJson(r.base, '/v1/completions', { prompt: PROMPT, max_tokens: 40, temperature: 0, stop: [stop, 'zzzz'] }))
    expect(res.choices[0]).toMatchObject({ text: cut, finish_reason: 'stop' })
    expect(res.usage.completion_tokens).toBeLessThan(40)
    const streamed = sseEvents((await postJson(r.base, '/v1/completions', { prompt: PROMPT, max_tokens: 40, temperature: 0, stop, stream: true })).body).events
    expect(streamed.map((e) => e.choices[0].text).join('')).toBe(cut)
    expect(streamed.at(-1).choices[0].finish_reason).toBe('stop')
  }, 60_000)

  it('gives every error in OpenAI\'s shape: 400 with param, 404, 413; chat on a llama2.c model is a clear 400', async () => {
    const expectError = (res: Awaited<ReturnType<typeof postJson>>, status: number, fields: object): void => {
      expect(res.status, res.body.toString()).toBe(status)
      expect(res.headers['content-type']).toMatch(/^application\/json/)
      expect(jsonOf(res).error).toMatchObject(fields)
      expect(Object.keys(jsonOf(res).error).sort()).toEqual(['code', 'message', 'param', 'type'])
    }
    const c = { prompt: PROMPT }
    for (const [body, param] of [
      [{ ...c, max_tokens: -1 }, 'max_tokens'], [{ ...c, max_tokens: 1e9 }, 'max_tokens'], [{ ...c, max_tokens: 100_000 }, 'max_tokens'],
      [{ ...c, max_completion_tokens: 2.5 }, 'max_completion_tokens'], [{ ...c, temperature: -1 }, 'temperature'], [{ ...c, top_p: 7 }, 'top_p'],
      [{ ...c, seed: -1 }, 'seed'], [{ ...c, n: 2 }, 'n'], [{ ...c, stop: 5 }, 'stop'], [{ prompt: 42 }, 'prompt'], [{}, 'prompt']
    ] as const) {
      const res = await postJson(r.base, '/v1/completions', body)
      expectError(res, 400, { type: 'invalid_request_error', param })
      expect(res.headers['x-should-retry']).toBe('false')
    }
    expectError(await rawRequest(r.base, 'POST', '/v1/completions', { body: '{"prompt": ' }), 400, { type: 'invalid_request_error' })
    expectError(await postJson(r.base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] }), 400, { param: 'messages', code: 'chat_not_supported' })
    expectError(await postJson(r.base, '/v1/completions', { ...c, model: 'gpt-4o' }), 404, { code: 'model_not_found', param: 'model' })
    expectError(await rawRequest(r.base, 'GET', '/v1/models/gpt-4o'), 404, { code: 'model_not_found' })
    expectError(await rawRequest(r.base, 'GET', '/v1/nothing'), 404, { code: 'not_found' })
    // the server answers 413 as soon as it sees the length and closes: the rest of the upload may meet a closed socket (EPIPE) first
    const tooLarge = async (): Promise<Awaited<ReturnType<typeof postJson>>> => {
      for (let i = 0; ; i++) {
        try { return await postJson(r.base, '/v1/completions', { prompt: 'x'.repeat(2 * 1024 * 1024) }) } catch (err) { if (i === 4) throw err }
      }
    }
    expectError(await tooLarge(), 413, { code: 'request_too_large' })
    // a page of another site whose name resolves to 127.0.0.1 (DNS rebinding)
    expectError(await rawRequest(r.base, 'GET', '/v1/models', { headers: { host: 'evil.example:80' } }), 403, { code: 'forbidden_host' })
    expect((await rawRequest(r.base, 'GET', '/v1/models', { headers: { host: `localhost:${r.port}` } })).status).toBe(200)
    // no CORS unless allowed
    expect((await rawRequest(r.base, 'GET', '/v1/models', { headers: { origin: 'http://evil.example' } })).headers['access-control-allow-origin']).toBeUndefined()
  }, 60_000)

  it('with a key, every route but /health and the page asks for it (Bearer or X-Api-Key); revoked, the API is open again', async () => {
    const created = await mesh(r.devs[0].home, ['api-key', 'create', '--name', 'test', '--json'])
    expect(created.code, created.stderr).toBe(0)
    const { key, id } = JSON.parse(created.stdout)
    expect(key).toMatch(/^mesh-[A-Za-z0-9_-]{43}$/)
    await vi.waitFor(async () => { expect((await rawRequest(r.base, 'GET', '/v1/models')).status).toBe(401) }, { timeout: 5000, interval: 100 })
    const refused = await rawRequest(r.base, 'GET', '/v1/models', { headers: { authorization: 'Bearer wrong' } })
    expect(refused.status).toBe(401)
    expect(jsonOf(refused).error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' })
    expect((await rawRequest(r.base, 'GET', '/v1/models', { headers: { authorization: `Bearer ${key as string}` } })).status).toBe(200)
    expect((await postJson(r.base, '/v1/completions', { prompt: PROMPT, max_tokens: 2 }, { 'x-api-key': key })).status).toBe(200)
    expect((await rawRequest(r.base, 'GET', '/health')).status).toBe(200)
    expect((await rawRequest(r.base, 'GET', '/')).status).toBe(200)
    const listed = await mesh(r.devs[0].home, ['api-key', 'list'])
    expect(listed.stdout).toContain(`${id as string}  `)
    expect(listed.stdout).not.toContain(key)
    expect((await mesh(r.devs[0].home, ['api-key', 'revoke', 'test'])).stdout).toBe(`revoked API key ${id as string} (test)\n`)
    await vi.waitFor(async () => { expect((await rawRequest(r.base, 'GET', '/v1/models')).status).toBe(200) }, { timeout: 5000, interval: 100 })
    const missing = await mesh(r.devs[0].home, ['api-key', 'revoke', 'test'])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toBe('mesh: no API key with id or name "test"; see mesh api-key list\n')
  }, 60_000)

  it('a client that disconnects mid-stream cancels the job on both members within 2 s; the next request does not wait', async () => {
    const before = (await stats(r.devs[0].home)).totals.cancelled
    let request: http.ClientRequest | undefined
    const streaming = rawRequest(r.base, 'POST', '/v1/completions', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: PROMPT, max_tokens: 500, temperature: 0, stream: true }),
      onData: (_soFar, req) => { request = req }
    }).catch(() => undefined)
    // the job runs on both: led by the gateway's agent, served by the other
    await vi.waitFor(async () => {
      expect((await stats(r.devs[0].home)).active.leading).toHaveLength(1)
      expect((await stats(r.devs[1].home)).active.serving).toHaveLength(1)
      expect(request).toBeDefined()
    }, { timeout: 5000, interval: 20 })
    const cut = performance.now()
    request!.destroy()
    await streaming
    await vi.waitFor(async () => {
      for (const d of r.devs) {
        const s = await stats(d.home)
        expect(s.active.leading).toEqual([])
        expect(s.active.serving).toEqual([])
      }
    }, { timeout: 2000, interval: 50 })
    expect(performance.now() - cut).toBeLessThan(2000)
    expect((await stats(r.devs[0].home)).totals.cancelled).toBe(before + 1)
    const t = performance.now()
    expect((await postJson(r.base, '/v1/completions', { prompt: PROMPT, max_tokens: 4 })).status).toBe(200)
    expect(performance.now() - t).toBeLessThan(3000)
  }, 60_000)

  it('N+1 requests at once: each answered with its own right usage, or 429 with retry-after; none lost', async () => {
    const one = jsonOf(await postJson(r.base, '/v1/completions', { prompt: PROMPT, max_tokens: 48, temperature: 0 }))
    const all = await Promise.all(Array.from({ length: 10 }, async () => await postJson(r.base, '/v1/completions', { prompt: PROMPT, max_tokens: 48, temperature: 0 })))
    const ok = all.filter((x) => x.status === 200)
    const busy = all.filter((x) => x.status === 429)
    expect(ok.length + busy.length).toBe(10)
    expect(ok).toHaveLength(9) // one running, eight waiting
    for (const b of busy) {
      expect(b.headers['retry-after']).toBe('1')
      expect(b.headers['x-should-retry']).toBeUndefined()
      expect(jsonOf(b).error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' })
    }
    for (const x of ok) {
      expect(jsonOf(x).choices[0].text).toBe(one.choices[0].text)
      expect(jsonOf(x).usage).toEqual(one.usage)
    }
  }, 120_000)

  it('a network bind without an API key is refused on one line; an agent with no ring answers 503', async () => {
    const root = tempRoot()
    const lone = testDevice(root, 'lone')
    const port = await freeTcpPort()
    const open = await mesh(lone.home, ['start', '--api', `0.0.0.0:${port}`])
    expect(open.code).toBe(2)
    expect(open.stdout).toBe('')
    expect(open.stderr).toBe(`mesh: the API on 0.0.0.0:${port} would be open to the network: create a key first (mesh api-key create), or bind it to 127.0.0.1\n`)
    // a port in use: the agent says so on one line, and does not stay up
    const busy = net.createServer()
    await new Promise<void>((resolve) => { busy.listen(0, '127.0.0.1', () => { resolve() }) })
    const taken = (busy.address() as net.AddressInfo).port
    const clash = await mesh(lone.home, ['start', '--api', String(taken), '--beacon-port', String(await freeTcpPort())])
    busy.close()
    expect(clash.code).toBe(1)
    expect(clash.stderr).toMatch(new RegExp(`^mesh: the agent exited at start-up \\(code 1\\): cannot serve the API on 127\\.0\\.0\\.1:${taken}: the port is in use; choose another with --api \\[HOST:\\]PORT; see \\S+agent\\.log\n$`))
    const started = await mesh(lone.home, ['start', '--api', String(port), '--beacon-port', String(await freeTcpPort())])
    expect(started.code, started.stderr).toBe(0)
    expect(started.stdout.split('\n')[1]).toBe(`OpenAI-compatible API at http://127.0.0.1:${port}/v1, dashboard at http://127.0.0.1:${port}/`)
    try {
      const base = `http://127.0.0.1:${port}`
      const health = await rawRequest(base, 'GET', '/health')
      expect(health.status).toBe(503)
      expect(jsonOf(health)).toMatchObject({ status: 'unavailable', reason: 'this agent holds no pool certificate yet' })
      const res = await postJson(base, '/v1/completions', { prompt: PROMPT })
      expect(res.status).toBe(503)
      expect(jsonOf(res).error).toMatchObject({ type: 'service_unavailable', code: 'ring_unavailable' })
      expect(res.headers['x-should-retry']).toBeUndefined()
    } finally {
      await mesh(lone.home, ['stop'])
    }
  }, 60_000)
})
