import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isLoopbackHost, parseApiAddress } from '../../../src/agent/api/openai/address.js'
import { InvalidRequestError, QueueFullError } from '../../../src/agent/api/openai/errors.js'
import { ApiKeyNotFoundError, ApiKeyRequiredError, ApiKeyRing, apiKeysFile, checkApiExposure, createApiKey, readApiKeys, revokeApiKey } from '../../../src/agent/api/openai/keys.js'
import { JobQueue } from '../../../src/agent/api/openai/queue.js'
import { parseChatRequest, parseCompletionRequest } from '../../../src/agent/api/openai/requests.js'
import { StopFilter } from '../../../src/agent/api/openai/stop-text.js'
import { resolveAgentConfig } from '../../../src/agent/config.js'
import { UsageError } from '../../../src/errors.js'

const dirs: string[] = []
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }) })
const home = (): string => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-keys-')); dirs.push(d); return d }

describe('stop strings', () => {
  const run = (stops: string[], pieces: string[]): { out: string[], stopped: boolean, tail: string } => {
    const f = new StopFilter(stops)
    const out = pieces.map((p) => f.push(p))
    return { out, stopped: f.stopped, tail: f.flush() }
  }
  it('cuts at a stop string split across pieces, and never sends a part of it', () => {
    expect(run(['END'], ['Hello E', 'N', 'D and more'])).toEqual({ out: ['Hello ', '', ''], stopped: true, tail: '' })
  })
  it('releases held text that turned out not to be a stop string', () => {
    expect(run(['END'], ['a E', 'x'])).toEqual({ out: ['a ', 'Ex'], stopped: false, tail: '' })
    expect(run(['END'], ['a EN'])).toEqual({ out: ['a '], stopped: false, tail: 'EN' })
  })
  it('stops at the earliest of several', () => {
    expect(run(['world', 'lo'], ['hello world'])).toEqual({ out: ['hel'], stopped: true, tail: '' })
  })
  it('with no stop strings passes everything at once', () => {
    expect(run([], ['a', 'b'])).toEqual({ out: ['a', 'b'], stopped: false, tail: '' })
  })
})

describe('request validation', () => {
  const chat = { model: 'm', messages: [{ role: 'user', content: 'hi' }] }
  it('reads a chat with content parts, and max_completion_tokens over max_tokens', () => {
    const r = parseChatRequest({ ...chat, messages: [{ role: 'developer', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }], max_tokens: 5, max_completion_tokens: 7, stop: 'x', unknown_field: { any: 1 } })
    expect(r.messages).toEqual([{ role: 'system', content: 'be brief' }, { role: 'user', content: 'ab' }])
    expect(r.maxTokens).toBe(7)
    expect(r.stop).toEqual(['x'])
    expect(r.temperature).toBe(1)
  })
  it.each([
    [{ ...chat, n: 2 }, 'n'],
    [{ ...chat, max_tokens: -1 }, 'max_tokens'],
    [{ ...chat, max_tokens: 1e12 }, 'max_tokens'],
    [{ ...chat, temperature: 3 }, 'temperature'],
    [{ ...chat, top_p: 0 }, 'top_p'],
    [{ ...chat, seed: -4 }, 'seed'],
    [{ ...chat, stop: Array.from({ length: 17 }, (_, i) => String(i)) }, 'stop'],
    [{ ...chat, messages: [] }, 'messages'],
    [{ ...chat, messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role'],
    [{ ...chat, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: 'x' }] }] }, 'messages[0].content'],
    [{ ...chat, stream_options: { include_usage: 'yes' } }, 'stream_options.include_usage']
  ])('refuses %j with param %s', (body, param) => {
    let caught: unknown
    try { parseChatRequest(body) } catch (err) { caught = err }
    expect(caught).toBeInstanceOf(InvalidRequestError)
    expect((caught as InvalidRequestError).param).toBe(param)
    expect((caught as InvalidRequestError).status).toBe(400)
  })
  it('takes a completion prompt as a string or a one-string array', () => {
    expect(parseCompletionRequest({ prompt: ['x'] }).prompt).toBe('x')
    expect(() => parseCompletionRequest({ prompt: [1, 2] })).toThrow(InvalidRequestError)
    expect(() => parseCompletionRequest([])).toThrow(InvalidRequestError)
  })
})

describe('API address', () => {
  it('parses PORT, HOST:PORT, [v6]:PORT; loopback by default', () => {
    expect(parseApiAddress('8000')).toEqual({ host: '127.0.0.1', port: 8000 })
    expect(parseApiAddress('0.0.0.0:8000')).toEqual({ host: '0.0.0.0', port: 8000 })
    expect(parseApiAddress('[::1]:80')).toEqual({ host: '::1', port: 80 })
    for (const bad of ['', 'x', '1.2.3:80', '70000', 'host:', '[zz]:1']) expect(() => parseApiAddress(bad)).toThrow(UsageError)
  })
  it('knows loopback', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'a.localhost', '::1', '[::1]']) expect(isLoopbackHost(h)).toBe(true)
    for (const h of ['0.0.0.0', '192.168.1.2', 'example.com', 'localhost.example.com']) expect(isLoopbackHost(h)).toBe(false)
  })
  it('comes from agent.json, env and flags as `api`, later wins', () => {
    expect(resolveAgentConfig('/h', { api: '8000' }, { api: '9000' }).api).toEqual({ address: { host: '127.0.0.1', port: 9000 }, corsOrigins: [] })
    expect(resolveAgentConfig('/h').api).toBeUndefined()
  })
})

describe('API keys', () => {
  it('stores only a hash, checks in constant time, revokes by id or name', () => {
    const h = home()
    const { key, record } = createApiKey(h, 'laptop')
    expect(fs.readFileSync(apiKeysFile(h), 'utf8')).not.toContain(key)
    expect(fs.statSync(apiKeysFile(h)).mode & 0o777).toBe(0o600)
    let t = 0
    const ring = new ApiKeyRing(h, 1000, () => t)
    expect(ring.required).toBe(true)
    expect(ring.check(key)).toBe(true)
    expect(ring.check(key + 'x')).toBe(false)
    expect(ring.check('')).toBe(false)
    expect(() => createApiKey(h, 'laptop')).toThrow(UsageError)
    revokeApiKey(h, 'laptop')
    expect(ring.check(key)).toBe(true) // re-read at most once a second
    t += 1000
    expect(ring.check(key)).toBe(false)
    expect(() => revokeApiKey(h, record.id)).toThrow(ApiKeyNotFoundError)
    expect(readApiKeys(h)).toEqual([])
  })
  it('a network bind needs a key', () => {
    const h = home()
    expect(() => checkApiExposure(h, '0.0.0.0:8000', false)).toThrow(ApiKeyRequiredError)
    checkApiExposure(h, '127.0.0.1:8000', true)
    createApiKey(h, '')
    checkApiExposure(h, '0.0.0.0:8000', false)
  })
})

describe('job queue', () => {
  it('runs one at a time, refuses beyond its bound, and drops a waiter whose client left', async () => {
    const q = new JobQueue(1)
    const order: string[] = []
    let finishFirst!: () => void
    const first = q.admit(new AbortController().signal)(async () => { order.push('1'); await new Promise<void>((resolve) => { finishFirst = resolve }) })
    const left = new AbortController()
    const second = q.admit(left.signal)(async () => { order.push('never') })
    expect(() => q.admit(new AbortController().signal)).toThrow(QueueFullError)
    left.abort(new Error('gone'))
    await expect(second).rejects.toThrow('gone')
    const third = q.admit(new AbortController().signal)(async () => { order.push('3') })
    finishFirst()
    await first; await third
    expect(order).toEqual(['1', '3'])
    expect(q.depth).toEqual({ running: false, waiting: 0 })
  })
})

describe('API config', () => {
  it('takes CORS origins as origins only', () => {
    expect(resolveAgentConfig('/h', { api: '8000', apiCors: ['https://chat.example:3000/'] }).api?.corsOrigins).toEqual(['https://chat.example:3000'])
    expect(() => resolveAgentConfig('/h', { api: '8000', apiCors: ['https://chat.example/path'] })).toThrow(UsageError)
    expect(() => resolveAgentConfig('/h', { api: '8000', apiCors: ['chat.example'] })).toThrow(UsageError)
  })
})
