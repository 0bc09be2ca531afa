/**
 * The job queue:
 *   POST /v1/pools/:poolId/jobs                   submit { prompt, maxTokens, temperature?, model? } → 201
 *   POST /v1/pools/:poolId/jobs/claim             { waitMs? } → 200 the job, or 204 when none waits
 *   POST /v1/pools/:poolId/jobs/:jobId/tokens     { seq, texts } streamed by the claimer
 *   POST /v1/pools/:poolId/jobs/:jobId/result     { result: { text, tokens, stats? } } or { error }
 *   GET  /v1/pools/:poolId/jobs/:jobId?from=N&waitMs=M   the job and its tokens from N (long poll)
 * Only the submitter and the claimer may read a job; only the claimer may write to it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { authenticate, parseJson, type AuthContext } from '../auth.js'
import { Refusal } from '../refusals.js'
import type { Job, JobStore, JobUpdate } from '../store/jobs.js'
import type { Waiters } from '../waiters.js'

export interface JobRouteConfig {
  /** a claimer that neither streams nor finishes for this long loses the job to the next claim */
  readonly leaseMs: number
  /** queued jobs per pool beyond which submissions get 429 */
  readonly maxQueuedJobs: number
  /** longest long poll a client may ask for */
  readonly maxWaitMs: number
}

const SubmitBody = z.strictObject({
  prompt: z.string().min(1).max(16_384),
  maxTokens: z.number().int().min(1).max(4096),
  temperature: z.number().min(0).max(2).default(0),
  model: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/).optional()
})
const TokensBody = z.strictObject({
  seq: z.number().int().min(0).max(1_000_000),
  texts: z.array(z.string().max(1024)).min(1).max(256)
})
const ResultBody = z.union([
  z.strictObject({
    result: z.strictObject({
      text: z.string().max(1_000_000),
      tokens: z.number().int().min(0),
      stats: z.record(z.string().max(64), z.number()).optional()
    })
  }),
  z.strictObject({ error: z.string().min(1).max(4096) })
])
const waitMs = (max: number) => z.number().int().min(0).max(max).default(0)
const PoolParams = z.object({ poolId: z.string() })
const JobParams = z.object({ poolId: z.string(), jobId: z.string().uuid() })

function jobParams (request: FastifyRequest): { poolId: string, jobId: string } {
  const parsed = JobParams.safeParse(request.params)
  if (!parsed.success) throw new Refusal('not-found', 'no such job (job ids are UUIDs)')
  return parsed.data
}

/** A job as the API shows it: `tokens` are the streamed tokens from index `from`; `next` counts them all. */
export interface JobView {
  readonly jobId: string
  readonly poolId: string
  readonly state: Job['state']
  readonly request: Job['request']
  readonly submitter: string
  readonly claimedBy: string | null
  readonly from: number
  readonly tokens: readonly string[]
  readonly next: number
  readonly result: NonNullable<Job['result']> | null
  readonly error: string | null
  readonly createdAt: string
  readonly updatedAt: string
}

function jobView (job: Job, tokens: string[], from: number, next: number): JobView {
  return {
    jobId: job.jobId,
    poolId: job.poolId,
    state: job.state,
    request: job.request,
    submitter: job.submitter,
    claimedBy: job.claimedBy ?? null,
    from,
    tokens,
    next,
    result: job.result ?? null,
    error: job.error ?? null,
    createdAt: new Date(job.createdAt).toISOString(),
    updatedAt: new Date(job.updatedAt).toISOString()
  }
}

function refuseUpdate (u: JobUpdate): void {
  switch (u) {
    case 'ok': return
    case 'not-found': throw new Refusal('not-found', 'no such job in this pool')
    case 'not-claimer': throw new Refusal('conflict', 'this device does not hold the job (not claimed by it, or its lease expired and another claimed it)')
    case 'finished': throw new Refusal('conflict', 'the job is already finished')
    case 'gap': throw new Refusal('conflict', 'tokens must be posted in order: seq is past the tokens received so far')
  }
}

export function jobRoutes (app: FastifyInstance, auth: AuthContext, jobs: JobStore, waiters: Waiters, cfg: JobRouteConfig): void {
  const poolQueue = (poolId: string): string => `pool:${poolId}`
  const jobKey = (jobId: string): string => `job:${jobId}`

  app.post('/v1/pools/:poolId/jobs', async (request, reply) => {
    const m = authenticate(auth, request, PoolParams.parse(request.params).poolId, 'member')
    const body = parseJson(request, SubmitBody)
    if (jobs.queued(m.poolId) >= cfg.maxQueuedJobs) throw new Refusal('queue-full', `pool has ${cfg.maxQueuedJobs} queued jobs; retry later`)
    const job = jobs.submit(m.poolId, m.nodeId, body, auth.now())
    waiters.notify(poolQueue(m.poolId))
    return reply.code(201).send(jobView(job, [], 0, 0))
  })

  app.post('/v1/pools/:poolId/jobs/claim', async (request, reply) => {
    const m = authenticate(auth, request, PoolParams.parse(request.params).poolId, 'member')
    const body = parseJson(request, z.strictObject({ waitMs: waitMs(cfg.maxWaitMs) }))
    const deadline = auth.now() + body.waitMs
    for (;;) {
      const job = jobs.claim(m.poolId, m.nodeId, auth.now(), cfg.leaseMs)
      if (job !== undefined) return jobView(job, [], 0, 0)
      const left = deadline - auth.now()
      if (left <= 0) return reply.code(204).send()
      await waiters.wait(poolQueue(m.poolId), left)
    }
  })

  app.post('/v1/pools/:poolId/jobs/:jobId/tokens', async (request) => {
    const { poolId, jobId } = jobParams(request)
    const m = authenticate(auth, request, poolId, 'member')
    const body = parseJson(request, TokensBody)
    refuseUpdate(jobs.appendTokens(poolId, jobId, m.nodeId, body.seq, body.texts, auth.now(), cfg.leaseMs))
    waiters.notify(jobKey(jobId))
    return { jobId, next: jobs.tokenCount(jobId) }
  })

  app.post('/v1/pools/:poolId/jobs/:jobId/result', async (request) => {
    const { poolId, jobId } = jobParams(request)
    const m = authenticate(auth, request, poolId, 'member')
    const body = parseJson(request, ResultBody)
    refuseUpdate(jobs.finish(poolId, jobId, m.nodeId, body, auth.now()))
    waiters.notify(jobKey(jobId))
    const job = jobs.get(poolId, jobId) as Job
    return jobView(job, [], 0, jobs.tokenCount(jobId))
  })

  app.get('/v1/pools/:poolId/jobs/:jobId', async (request) => {
    const { poolId, jobId } = jobParams(request)
    const m = authenticate(auth, request, poolId, 'member')
    const q = z.strictObject({
      from: z.coerce.number().int().min(0).default(0),
      waitMs: z.coerce.number().int().min(0).max(cfg.maxWaitMs).default(0)
    }).safeParse(request.query)
    if (!q.success) throw new Refusal('malformed', `query: from and waitMs must be whole numbers (waitMs at most ${cfg.maxWaitMs})`)
    const read = (): Job => {
      const job = jobs.get(poolId, jobId)
      if (job === undefined) throw new Refusal('not-found', 'no such job in this pool')
      if (job.submitter !== m.nodeId && job.claimedBy !== m.nodeId) throw new Refusal('not-allowed', 'only the submitter and the claimer may read a job')
      return job
    }
    let job = read()
    const finished = (j: Job): boolean => j.state === 'done' || j.state === 'failed'
    if (!finished(job) && jobs.tokenCount(jobId) <= q.data.from) {
      await waiters.wait(jobKey(jobId), q.data.waitMs)
      job = read()
    }
    return jobView(job, jobs.tokens(jobId, q.data.from), q.data.from, jobs.tokenCount(jobId))
  })
}
