import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import type { InferenceEvent, InferenceRequest } from '../../../src/agent/inference/events.js'
import { ApiKeyRing } from '../../../src/agent/api/openai/keys.js'
import type { JobRunner } from '../../../src/agent/api/openai/generation.js'
import { buildGateway, gatewayDefaults } from '../../../src/agent/api/openai/server.js'
import { rawRequest, sseEvents } from '../../helpers/openai-ring.js'

/*
 * The gateway's answers to what a ring job can do that a healthy test ring will not on cue: a long
 * silence before the first token (keepalive comments) and a failure after the stream began (an
 * error event, then [DONE]). The job runner here scripts the events JobService.run emits; the
 * HTTP server, SSE writer and client are real.
 */
const dirs: string[] = []
const apps: Array<{ close: () => Promise<unknown> }> = []
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close()
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

const piece = (s: string): string => Buffer.from(s).toString('base64')

async function gateway (run: JobRunner['run'], over: Partial<ReturnType<typeof gatewayDefaults>> = {}): Promise<string> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-gw-')); dirs.push(home)
  const app = buildGateway({ ...gatewayDefaults({ host: '127.0.0.1', port: 0 }), ...over }, {
    jobs: { run },
    model: () => ({ name: 'm', identity: 'f'.repeat(64), format: 'gguf', contextLength: 2048, created: 0 }),
    notReady: () => undefined,
    health: () => ({}),
    dashboard: () => ({}),
    keys: new ApiKeyRing(home),
    log: pino({ level: 'silent' })
  })
  apps.push(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const a = app.server.address()
  return `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`
}

const started = (emit: (e: InferenceEvent) => void): void => { emit({ type: 'started', jobId: 'j', poolId: 'p' }); emit({ type: 'prompt', tokens: 3 }) }
const stream = { messages: [{ role: 'user', content: 'hi' }], stream: true }

describe('the gateway\'s stream', () => {
  it('sends keepalive comments while the job is silent (a long prompt), then the tokens', async () => {
    const base = await gateway(async (_req: InferenceRequest, emit) => {
      started(emit)
      await new Promise((resolve) => setTimeout(resolve, 400))
      emit({ type: 'token', id: 1, piece: piece('Hi') })
      emit({ type: 'done', result: { prompt_token_ids: [1, 2, 3], generated_tokens: 1, stop_reason: 'eog' } as never })
    }, { keepaliveMs: 100 })
    let headersAt = 0
    const t0 = performance.now()
    const res = await rawRequest(base, 'POST', '/v1/chat/completions', { body: JSON.stringify(stream), onHeaders: () => { headersAt = performance.now() - t0 } })
    expect(headersAt).toBeLessThan(300)
    const { comments, events } = sseEvents(res.body)
    expect(events.map((e) => e.choices[0].delta.content)).toEqual(['', 'Hi', undefined])
    expect(comments.length).toBeGreaterThanOrEqual(2)
    expect(comments.every((c) => c === ': keepalive')).toBe(true)
  })

  it('a failure after the stream began ends it with an error event, then [DONE]', async () => {
    const base = await gateway(async (_req, emit) => {
      started(emit)
      emit({ type: 'token', id: 1, piece: piece('Hel') })
      emit({ type: 'error', error: 'JobFailedError', usage: false, message: 'the job could not continue within 45000 ms of a failure: member lost' })
    })
    const { events } = sseEvents((await rawRequest(base, 'POST', '/v1/chat/completions', { body: JSON.stringify(stream) })).body)
    expect(events.map((e) => e.choices?.[0]?.delta?.content)).toEqual(['', 'Hel', undefined])
    expect(events.at(-1)).toEqual({ error: { message: 'the job could not continue within 45000 ms of a failure: member lost', type: 'service_unavailable', param: null, code: 'ring_unavailable' } })
  })

  it('decodes UTF-8 split across tokens, and answers CORS only for an allowed origin', async () => {
    const euro = Buffer.from('€')
    const base = await gateway(async (_req, emit) => {
      started(emit)
      emit({ type: 'token', id: 1, piece: euro.subarray(0, 2).toString('base64') })
      emit({ type: 'token', id: 2, piece: euro.subarray(2).toString('base64') })
      emit({ type: 'done', result: { prompt_token_ids: [1, 2, 3], generated_tokens: 2, stop_reason: 'eog' } as never })
    }, { corsOrigins: ['http://app.local:3000'] })
    const body = JSON.parse((await rawRequest(base, 'POST', '/v1/chat/completions', { body: JSON.stringify({ messages: stream.messages }) })).body.toString())
    expect(body.choices[0]).toMatchObject({ message: { content: '€' }, finish_reason: 'stop' })
    expect(body.usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 })
    const pre = await rawRequest(base, 'OPTIONS', '/v1/chat/completions', { headers: { origin: 'http://app.local:3000', 'access-control-request-method': 'POST' } })
    expect(pre.status).toBe(204)
    expect(pre.headers['access-control-allow-origin']).toBe('http://app.local:3000')
    const other = await rawRequest(base, 'GET', '/v1/models', { headers: { origin: 'http://evil.example' } })
    expect(other.headers['access-control-allow-origin']).toBeUndefined()
  })
})
