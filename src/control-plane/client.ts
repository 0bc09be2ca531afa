/**
 * Client of mesh-control-plane for agents and tests: signs every request with the device key and
 * sends the pool certificate (signing.ts), and checks every answer's shape before trusting it.
 *
 * Exports: ControlPlaneIdentity, ControlPlaneClientOptions, ControlPlaneRequestError,
 * ControlPlaneUnreachableError, ControlPlaneClient.
 */
import { z } from 'zod'
import { MeshError } from '../errors.js'
import type { RingView } from './ring-view.js'
import type { JobView } from './routes/jobs.js'
import { newNonce, signRequest } from './signing.js'
import type { JobRequest, JobResult } from './store/jobs.js'

export interface ControlPlaneIdentity {
  /** this device's member certificate for the pool, as encoded bytes */
  readonly certBytes: Uint8Array
  /** the device's ed25519 private seed */
  readonly privateKey: Uint8Array
}

export interface ControlPlaneClientOptions {
  /** clock for request timestamps (tests pass a skewed one) */
  readonly now?: () => number
  /** per request, on top of any long-poll wait */
  readonly timeoutMs?: number
}

/** The control plane refused a request: `status` and `reason` are the server's. */
export class ControlPlaneRequestError extends MeshError {
  constructor (readonly status: number, readonly reason: string, message: string) {
    super(`control plane refused the request (${status} ${reason}): ${message}`)
  }
}

/** No answer, or an answer that is not what the API promises. */
export class ControlPlaneUnreachableError extends MeshError {}

const iso = z.string().min(1)
const RingViewSchema = z.object({
  version: z.literal(1),
  poolId: z.string(),
  epoch: z.number().int().nonnegative(),
  hash: z.string(),
  shardMode: z.enum(['even', 'capacity']),
  columns: z.number().int().positive(),
  updatedAt: iso,
  members: z.array(z.object({
    nodeId: z.string(),
    name: z.string(),
    position: z.number().int().nonnegative(),
    start: z.number().int().nonnegative(),
    end: z.number().int().positive(),
    addresses: z.array(z.string()),
    status: z.literal('online'),
    lastHeartbeatAt: iso
  }))
})
const JobViewSchema = z.object({
  jobId: z.string(),
  poolId: z.string(),
  state: z.enum(['queued', 'running', 'done', 'failed']),
  request: z.object({ prompt: z.string(), maxTokens: z.number(), temperature: z.number(), model: z.string().optional() }),
  submitter: z.string(),
  claimedBy: z.string().nullable(),
  from: z.number().int().nonnegative(),
  tokens: z.array(z.string()),
  next: z.number().int().nonnegative(),
  result: z.object({ text: z.string(), tokens: z.number(), stats: z.record(z.string(), z.number()).optional() }).nullable(),
  error: z.string().nullable(),
  createdAt: iso,
  updatedAt: iso
})
const ErrorSchema = z.object({ error: z.string(), message: z.string() })
const HealthSchema = z.object({ status: z.literal('ok'), version: z.string(), uptimeMs: z.number(), refused: z.record(z.string(), z.number()) })
const RegistrationSchema = z.object({ poolId: z.string(), nodeId: z.string(), name: z.string(), registeredAt: iso, certNotAfter: iso })

export type Health = z.infer<typeof HealthSchema>
export type Registration = z.infer<typeof RegistrationSchema>

export class ControlPlaneClient {
  private readonly base: string
  private readonly now: () => number
  private readonly timeoutMs: number

  constructor (baseUrl: string, readonly poolId: string, private readonly identity: ControlPlaneIdentity, opts: ControlPlaneClientOptions = {}) {
    this.base = baseUrl.replace(/\/+$/, '')
    this.now = opts.now ?? Date.now
    this.timeoutMs = opts.timeoutMs ?? 10_000
  }

  /** One signed request; the answer's JSON (undefined for 204). */
  async request (method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown, waitMs = 0): Promise<unknown> {
    const bytes = body === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(body))
    const headers: Record<string, string> = signRequest({ method, path, body: bytes, timestamp: this.now(), nonce: newNonce() }, this.identity.certBytes, this.identity.privateKey)
    if (body !== undefined) headers['content-type'] = 'application/json'
    return await this.send(method, path, headers, body === undefined ? undefined : bytes, waitMs)
  }

  private async send (method: string, path: string, headers: Record<string, string>, body: Uint8Array | undefined, waitMs: number): Promise<unknown> {
    let res: Response
    try {
      res = await fetch(this.base + path, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs + waitMs) })
    } catch (err) {
      throw new ControlPlaneUnreachableError(`control plane ${this.base} did not answer ${method} ${path}: ${err instanceof Error ? err.message : String(err)}`)
    }
    if (res.status === 204) return undefined
    const text = await res.text()
    let json: unknown
    try { json = JSON.parse(text) } catch { throw new ControlPlaneUnreachableError(`control plane ${this.base} answered ${res.status} with a body that is not JSON`) }
    if (res.ok) return json
    const e = ErrorSchema.safeParse(json)
    throw new ControlPlaneRequestError(res.status, e.success ? e.data.error : 'unknown', e.success ? e.data.message : text.slice(0, 200))
  }

  private parse<S extends z.ZodType> (schema: S, value: unknown, what: string): z.infer<S> {
    const r = schema.safeParse(value)
    if (!r.success) throw new ControlPlaneUnreachableError(`control plane ${this.base} sent a malformed ${what}`)
    return r.data
  }

  private pool (rest: string): string { return `/v1/pools/${this.poolId}${rest}` }

  async health (): Promise<Health> {
    return this.parse(HealthSchema, await this.send('GET', '/health', {}, undefined, 0), 'health answer')
  }

  async register (rootPublicKey: Uint8Array): Promise<Registration> {
    const value = await this.request('POST', this.pool('/devices'), { rootPublicKey: Buffer.from(rootPublicKey).toString('hex') })
    return this.parse(RegistrationSchema, value, 'registration')
  }

  /** Hand over the pool's newest root-signed revocation list; `changed` is false if it was held already. */
  async uploadRevocation (listBytes: Uint8Array): Promise<{ sequence: number, changed: boolean }> {
    const value = await this.request('PUT', this.pool('/revocation'), { list: Buffer.from(listBytes).toString('base64url') })
    return this.parse(z.object({ poolId: z.string(), sequence: z.number().int(), changed: z.boolean() }), value, 'revocation answer')
  }

  async joinRing (opts: { weight?: number, addresses?: readonly string[] } = {}): Promise<RingView> {
    return this.parse(RingViewSchema, await this.request('POST', this.pool('/ring/join'), opts), 'ring')
  }

  async heartbeat (): Promise<RingView> {
    return this.parse(RingViewSchema, await this.request('POST', this.pool('/ring/heartbeat'), {}), 'ring')
  }

  async leaveRing (): Promise<RingView> {
    return this.parse(RingViewSchema, await this.request('POST', this.pool('/ring/leave'), {}), 'ring')
  }

  async ring (): Promise<RingView> {
    return this.parse(RingViewSchema, await this.request('GET', this.pool('/ring')), 'ring')
  }

  async submitJob (request: Omit<JobRequest, 'temperature'> & { temperature?: number }): Promise<JobView> {
    return this.parse(JobViewSchema, await this.request('POST', this.pool('/jobs'), request), 'job')
  }

  /** The next job of the pool, waiting up to `waitMs` for one; undefined when none came. */
  async claimJob (waitMs = 0): Promise<JobView | undefined> {
    const value = await this.request('POST', this.pool('/jobs/claim'), { waitMs }, waitMs)
    return value === undefined ? undefined : this.parse(JobViewSchema, value, 'job')
  }

  /** Stream tokens `seq`, `seq + 1`, …; returns how many the server holds. */
  async postTokens (jobId: string, seq: number, texts: readonly string[]): Promise<number> {
    const value = await this.request('POST', this.pool(`/jobs/${jobId}/tokens`), { seq, texts })
    return this.parse(z.object({ next: z.number().int().nonnegative() }), value, 'token answer').next
  }

  async finishJob (jobId: string, outcome: { result: JobResult } | { error: string }): Promise<JobView> {
    return this.parse(JobViewSchema, await this.request('POST', this.pool(`/jobs/${jobId}/result`), outcome), 'job')
  }

  /** The job with its tokens from index `from`, waiting up to `waitMs` for new ones. */
  async job (jobId: string, opts: { from?: number, waitMs?: number } = {}): Promise<JobView> {
    const from = opts.from ?? 0
    const waitMs = opts.waitMs ?? 0
    const value = await this.request('GET', this.pool(`/jobs/${jobId}?from=${from}&waitMs=${waitMs}`), undefined, waitMs)
    return this.parse(JobViewSchema, value, 'job')
  }
}
