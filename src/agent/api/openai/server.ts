import crypto from 'node:crypto'
import os from 'node:os'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from '../../log.js'
import { inferenceRequestSchema, type InferenceRequest } from '../../inference/events.js'
import { formatApiAddress, isLoopbackHost, type ApiAddress } from './address.js'
import { DASHBOARD_HTML } from './dashboard/page.js'
import { ApiError, BodyTooLargeError, ForbiddenHostError, InternalApiError, InvalidApiKeyError, InvalidRequestError, ModelNotFoundError, RingUnavailableError, RouteNotFoundError } from './errors.js'
import { ClientGoneError, runGeneration, type JobRunner } from './generation.js'
import type { ApiKeyRing } from './keys.js'
import { JobQueue } from './queue.js'
import { parseChatRequest, parseCompletionRequest, type GenerationRequest } from './requests.js'
import { ChunkMaker, chatCompletion, modelObject, textCompletion, type GatewayModel, type Ids } from './responses.js'
import { KEEPALIVE_MS, SseStream } from './sse.js'

export interface GatewayConfig {
  readonly address: ApiAddress
  /** origins whose pages may call the API from a browser (CORS); none by default */
  readonly corsOrigins: readonly string[]
  /** requests waiting behind the running one; more get 429 */
  readonly maxWaiting: number
  /** a long chat history is some hundred KB of JSON */
  readonly bodyLimitBytes: number
  readonly keepaliveMs: number
  /** without max_tokens: generate up to this many (a model's whole context can be 128k positions of KV cache on every member) */
  readonly defaultMaxTokens: number
}

export function gatewayDefaults (address: ApiAddress): GatewayConfig {
  return { address, corsOrigins: [], maxWaiting: 8, bodyLimitBytes: 1024 * 1024, keepaliveMs: KEEPALIVE_MS, defaultMaxTokens: 4096 }
}

/** What the gateway needs of the agent. */
export interface GatewayComponents {
  readonly jobs: JobRunner
  /** the model this agent's ring runs; undefined while it is being fetched */
  readonly model: () => GatewayModel | undefined
  /** why no job can run now (no converged ring with this node), or undefined when one can */
  readonly notReady: () => string | undefined
  /** what GET /health shows beside ready or not */
  readonly health: () => object
  /** what the dashboard polls */
  readonly dashboard: () => object
  readonly keys: ApiKeyRing
  readonly log: Logger
}

const PUBLIC_PATHS = new Set(['/', '/health', '/favicon.ico'])

/** The fastify app of the OpenAI-compatible gateway, not yet listening. */
export function buildGateway (cfg: GatewayConfig, c: GatewayComponents): FastifyInstance {
  const app = Fastify({ bodyLimit: cfg.bodyLimitBytes, forceCloseConnections: true, return503OnClosing: true })
  const queue = new JobQueue(cfg.maxWaiting)
  const loopback = isLoopbackHost(cfg.address.host)
  const localNames = new Set([os.hostname().toLowerCase(), `${os.hostname().toLowerCase()}.local`, cfg.address.host.toLowerCase()])

  // clients send JSON under any content type (or none): parse it here, so a bad body is our 400
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => { done(null, body) })

  app.addHook('onRequest', async (req, reply) => {
    if (loopback) {
      // DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends Host: evil.example
      const host = hostName(req.headers.host ?? '')
      if (!isLoopbackHost(host) && !localNames.has(host)) throw new ForbiddenHostError(req.headers.host ?? '')
    }
    const origin = req.headers.origin
    if (origin !== undefined && cfg.corsOrigins.includes(origin)) {
      void reply.header('access-control-allow-origin', origin).header('vary', 'origin')
      if (req.method === 'OPTIONS') {
        return await reply.code(204)
          .header('access-control-allow-methods', 'GET, POST, OPTIONS')
          .header('access-control-allow-headers', 'authorization, content-type, x-api-key')
          .header('access-control-max-age', '600').send()
      }
    }
    const path = req.url.split('?')[0] ?? ''
    if (PUBLIC_PATHS.has(path) || !c.keys.required) return
    if (!c.keys.check(presentedKey(req))) throw new InvalidApiKeyError()
  })

  app.setNotFoundHandler(async (req) => { throw new RouteNotFoundError(req.method, req.url.split('?')[0] ?? '') })
  app.setErrorHandler(async (err: FastifyError | ApiError, req, reply) => {
    const e = err instanceof ApiError ? err
      : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? new BodyTooLargeError(cfg.bodyLimitBytes)
        : typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? new InvalidRequestError(err.message)
          : undefined
    if (e === undefined) c.log.error({ err, url: req.url }, 'gateway error')
    return await sendError(reply, e ?? new InternalApiError('internal error; see the agent log'))
  })

  // the page loads nothing from anywhere: its script and styles are inline, and the policy says so
  app.get('/', async (_req, reply) => await reply.type('text/html; charset=utf-8').header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    .header('x-content-type-options', 'nosniff').send(DASHBOARD_HTML))
  app.get('/health', async (_req, reply) => {
    const why = c.notReady()
    return await reply.code(why === undefined ? 200 : 503).send({ status: why === undefined ? 'ok' : 'unavailable', ...(why === undefined ? {} : { reason: why }), ...c.health() })
  })
  app.get('/api/dashboard', async () => ({ ...c.dashboard(), gateway: { queue: queue.depth, address: formatApiAddress(cfg.address), keys: c.keys.required } }))

  for (const prefix of ['/v1', '']) {
    app.get(`${prefix}/models`, async () => {
      const m = c.model()
      return { object: 'list', data: m === undefined ? [] : [modelObject(m)] }
    })
    app.get(`${prefix}/models/:id`, async (req) => {
      const { id } = req.params as { id: string }
      return modelObject(servedModel(id))
    })
    app.post(`${prefix}/chat/completions`, async (req, reply) => { await generate(parseChatRequest(jsonBody(req)), reply) })
    app.post(`${prefix}/completions`, async (req, reply) => { await generate(parseCompletionRequest(jsonBody(req)), reply) })
  }

  /** The served model, if `asked` names it (or nothing was asked). */
  function servedModel (asked: string | undefined): GatewayModel {
    const m = c.model()
    if (m === undefined) throw new RingUnavailableError('this agent is still fetching its model; retry in a moment')
    if (asked !== undefined && asked !== m.name && asked !== m.identity) throw new ModelNotFoundError(asked, m.name)
    return m
  }

  /** Checks that need the model, then the job in the request's turn: streamed or as one answer. */
  async function generate (g: GenerationRequest, reply: FastifyReply): Promise<void> {
    const model = servedModel(g.model)
    if (g.endpoint === 'chat' && model.format === 'llama2c') {
      throw new InvalidRequestError(`the model ${model.name} is a llama2.c checkpoint with no chat template; use POST /v1/completions with a prompt, or serve a GGUF chat model (mesh start --model FILE.gguf)`, 'messages', 'chat_not_supported')
    }
    if (g.maxTokens !== undefined && g.maxTokens > model.contextLength) {
      throw new InvalidRequestError(`max_tokens is ${g.maxTokens}; the model's context is ${model.contextLength} tokens`, 'max_tokens')
    }
    const job = jobRequest(g, Math.min(cfg.defaultMaxTokens, model.contextLength))
    const why = c.notReady()
    if (why !== undefined) throw new RingUnavailableError(why)
    // the client leaving (its socket closing before our answer is finished) cancels the job
    const gone = new AbortController()
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) gone.abort(new ClientGoneError()) })
    const inTurn = queue.admit(gone.signal)
    const ids: Ids = { id: `${g.endpoint === 'chat' ? 'chatcmpl' : 'cmpl'}-${crypto.randomBytes(12).toString('hex')}`, created: Math.floor(Date.now() / 1000), model: model.name }
    const started = performance.now()
    const logDone = (outcome: string, extra: object = {}): void => { c.log.info({ endpoint: g.endpoint, stream: g.stream, outcome, ms: Math.round(performance.now() - started), ...extra }, 'api request') }
    if (!g.stream) {
      try {
        const o = await inTurn(async () => await runGeneration(c.jobs, job, g.endpoint, g.stop, gone.signal, () => {}))
        logDone('ok', { job: o.jobId, usage: o.usage })
        await reply.send(g.endpoint === 'chat' ? chatCompletion(ids, o) : textCompletion(ids, o))
      } catch (err) {
        // nobody to answer: tell fastify the reply is ours, so it does not answer a closed socket
        if (err instanceof ClientGoneError || gone.signal.aborted) { reply.hijack(); logDone('client-gone'); return }
        throw err
      }
      return
    }
    reply.hijack()
    const sse = new SseStream(reply.raw, headersOf(reply), cfg.keepaliveMs)
    const chunks = new ChunkMaker(g.endpoint, ids, g.includeUsage)
    const first = chunks.first()
    if (first !== undefined) sse.event(first)
    try {
      const o = await inTurn(async () => await runGeneration(c.jobs, job, g.endpoint, g.stop, gone.signal, (delta) => { sse.event(chunks.text(delta)) }))
      sse.event(chunks.finish(o))
      const usage = chunks.usage(o)
      if (usage !== undefined) sse.event(usage)
      logDone('ok', { job: o.jobId, usage: o.usage })
    } catch (err) {
      if (err instanceof ClientGoneError || gone.signal.aborted) { sse.close(); logDone('client-gone'); return }
      const e = err instanceof ApiError ? err : new InternalApiError(err instanceof Error ? err.message : String(err))
      if (!(err instanceof ApiError)) c.log.error({ err }, 'gateway stream error')
      // the status went out with the headers: a failure mid-stream is an event, then the end
      sse.event(e.body())
      logDone('error', { err: e.message })
    }
    sse.end()
  }

  return app
}

/** An API request as the job takes it (the local API's schema, so the edge holds both bounds). */
function jobRequest (g: GenerationRequest, defaultMaxTokens: number): InferenceRequest {
  const seed = g.seed ?? crypto.randomBytes(6).readUIntBE(0, 6)
  const r = inferenceRequestSchema.safeParse({
    prompt: g.prompt,
    maxTokens: g.maxTokens ?? defaultMaxTokens,
    temperature: g.temperature,
    topP: g.topP,
    seed: String(seed),
    // multi-turn clients send the whole history again: the ring keeps the last job's cache for it
    keepCache: true,
    ...(g.messages === undefined ? {} : { messages: g.messages })
  })
  if (!r.success) {
    const issue = r.error.issues[0]
    throw new InvalidRequestError(`invalid request: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`, g.endpoint === 'chat' ? 'messages' : 'prompt')
  }
  return r.data
}

function jsonBody (req: FastifyRequest): unknown {
  const raw = req.body
  if (!Buffer.isBuffer(raw) || raw.length === 0) throw new InvalidRequestError('the request needs a JSON body')
  try { return JSON.parse(raw.toString('utf8')) } catch { throw new InvalidRequestError('the request body is not valid JSON') }
}

function presentedKey (req: FastifyRequest): string {
  const auth = req.headers.authorization
  if (typeof auth === 'string' && /^bearer /i.test(auth)) return auth.slice(7).trim()
  const x = req.headers['x-api-key']
  return typeof x === 'string' ? x.trim() : ''
}

/** `example.com:8000` → `example.com`, `[::1]:8000` → `::1` */
function hostName (host: string): string {
  const h = host.trim().toLowerCase()
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') < 0 ? undefined : h.indexOf(']'))
  return h.replace(/:\d*$/, '')
}

function headersOf (reply: FastifyReply): Record<string, string> {
  return Object.fromEntries(Object.entries(reply.getHeaders()).flatMap(([k, v]) => v === undefined ? [] : [[k, String(v)]]))
}

async function sendError (reply: FastifyReply, e: ApiError): Promise<FastifyReply> {
  if (!e.retryable) void reply.header('x-should-retry', 'false')
  if ('retryAfterS' in e && typeof e.retryAfterS === 'number') void reply.header('retry-after', String(e.retryAfterS))
  return await reply.code(e.status).type('application/json').send(e.body())
}
