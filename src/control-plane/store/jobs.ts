/**
 * The job queue: a member submits an inference job, an agent claims it (with a lease, so a job whose
 * agent died goes back to the queue), streams tokens, then posts the result or an error.
 *
 * Exports: JobRequest, JobResult, JobState, Job, JobUpdate, JobStore.
 */
import crypto from 'node:crypto'
import type { Database, Statement } from 'better-sqlite3'

export interface JobRequest {
  readonly prompt: string
  readonly maxTokens: number
  /** 0 = greedy */
  readonly temperature: number
  readonly model?: string | undefined
}

export interface JobResult {
  readonly text: string
  readonly tokens: number
  readonly stats?: Readonly<Record<string, number>> | undefined
}

export type JobState = 'queued' | 'running' | 'done' | 'failed'

export interface Job {
  readonly jobId: string
  readonly poolId: string
  readonly submitter: string
  readonly request: JobRequest
  readonly state: JobState
  readonly claimedBy: string | undefined
  readonly leaseUntil: number | undefined
  readonly result: JobResult | undefined
  readonly error: string | undefined
  readonly createdAt: number
  readonly updatedAt: number
}

/** Outcome of a claimer's write: applied, or why not (the route turns it into a status code). */
export type JobUpdate = 'ok' | 'not-found' | 'not-claimer' | 'finished' | 'gap'

interface RawJob {
  job_id: string, pool_id: string, submitter: string, request: string, state: JobState,
  claimed_by: string | null, lease_until: number | null, result: string | null, error: string | null,
  created_at: number, updated_at: number
}

const toJob = (r: RawJob): Job => ({
  jobId: r.job_id,
  poolId: r.pool_id,
  submitter: r.submitter,
  request: JSON.parse(r.request) as JobRequest,
  state: r.state,
  claimedBy: r.claimed_by ?? undefined,
  leaseUntil: r.lease_until ?? undefined,
  result: r.result === null ? undefined : JSON.parse(r.result) as JobResult,
  error: r.error ?? undefined,
  createdAt: r.created_at,
  updatedAt: r.updated_at
})

export class JobStore {
  private readonly insert: Statement<[string, string, string, string, number, number]>
  private readonly select: Statement<[string, string], RawJob>
  private readonly countQueuedStmt: Statement<[string], { n: number }>
  private readonly claimStmt: Statement<[string, number, number, string, number], RawJob>
  private readonly clearTokens: Statement<[string]>
  private readonly insertToken: Statement<[string, number, string]>
  private readonly extendLease: Statement<[number, number, string]>
  private readonly finishStmt: Statement<[JobState, string | null, string | null, number, string]>
  private readonly tokensAfter: Statement<[string, number], { text: string }>
  private readonly countTokens: Statement<[string], { n: number }>
  private readonly deleteFinished: Statement<[number]>

  constructor (private readonly db: Database) {
    this.insert = db.prepare(`INSERT INTO jobs (job_id, pool_id, submitter, request, state, created_at, updated_at)
      VALUES (?, ?, ?, ?, 'queued', ?, ?)`)
    this.select = db.prepare('SELECT * FROM jobs WHERE pool_id = ? AND job_id = ?')
    this.countQueuedStmt = db.prepare("SELECT count(*) AS n FROM jobs WHERE pool_id = ? AND state = 'queued'")
    // the oldest queued job, or a running one whose claimer stopped renewing its lease
    this.claimStmt = db.prepare(`
      UPDATE jobs SET state = 'running', claimed_by = ?, lease_until = ?, updated_at = ?
      WHERE job_id = (
        SELECT job_id FROM jobs
        WHERE pool_id = ? AND (state = 'queued' OR (state = 'running' AND lease_until < ?))
        ORDER BY created_at, rowid LIMIT 1)
      RETURNING *`)
    this.clearTokens = db.prepare('DELETE FROM job_tokens WHERE job_id = ?')
    this.insertToken = db.prepare('INSERT OR IGNORE INTO job_tokens (job_id, seq, text) VALUES (?, ?, ?)')
    this.extendLease = db.prepare('UPDATE jobs SET lease_until = ?, updated_at = ? WHERE job_id = ?')
    this.finishStmt = db.prepare('UPDATE jobs SET state = ?, result = ?, error = ?, lease_until = NULL, updated_at = ? WHERE job_id = ?')
    this.tokensAfter = db.prepare('SELECT text FROM job_tokens WHERE job_id = ? AND seq >= ? ORDER BY seq')
    this.countTokens = db.prepare('SELECT count(*) AS n FROM job_tokens WHERE job_id = ?')
    this.deleteFinished = db.prepare("DELETE FROM jobs WHERE state IN ('done', 'failed') AND updated_at < ?")
  }

  submit (poolId: string, submitter: string, request: JobRequest, now: number): Job {
    const jobId = crypto.randomUUID()
    this.insert.run(jobId, poolId, submitter, JSON.stringify(request), now, now)
    return this.get(poolId, jobId) as Job
  }

  get (poolId: string, jobId: string): Job | undefined {
    const r = this.select.get(poolId, jobId)
    return r === undefined ? undefined : toJob(r)
  }

  queued (poolId: string): number { return (this.countQueuedStmt.get(poolId) as { n: number }).n }

  /** Take the next job of the pool for `nodeId` until `now + leaseMs`; undefined when none waits. */
  claim (poolId: string, nodeId: string, now: number, leaseMs: number): Job | undefined {
    return this.db.transaction(() => {
      const r = this.claimStmt.get(nodeId, now + leaseMs, now, poolId, now)
      if (r === undefined) return undefined
      // a reclaimed job starts over: the previous claimer's partial output is not this run's
      this.clearTokens.run(r.job_id)
      return toJob(r)
    }).immediate()
  }

  private checkClaimer (poolId: string, jobId: string, nodeId: string): { update: JobUpdate, job?: Job } {
    const job = this.get(poolId, jobId)
    if (job === undefined) return { update: 'not-found' }
    if (job.state === 'done' || job.state === 'failed') return { update: 'finished', job }
    if (job.state !== 'running' || job.claimedBy !== nodeId) return { update: 'not-claimer', job }
    return { update: 'ok', job }
  }

  /** Store tokens `seq`, `seq + 1`, …; a retried post of the same tokens changes nothing. Renews the lease. */
  appendTokens (poolId: string, jobId: string, nodeId: string, seq: number, texts: readonly string[], now: number, leaseMs: number): JobUpdate {
    return this.db.transaction(() => {
      const { update } = this.checkClaimer(poolId, jobId, nodeId)
      if (update !== 'ok') return update
      // tokens arrive in order: a post may repeat earlier ones (a retry) but never skip any
      if (seq > this.tokenCount(jobId)) return 'gap'
      texts.forEach((t, i) => this.insertToken.run(jobId, seq + i, t))
      this.extendLease.run(now + leaseMs, now, jobId)
      return update
    }).immediate()
  }

  /** Close the job with its result or error. */
  finish (poolId: string, jobId: string, nodeId: string, outcome: { result: JobResult } | { error: string }, now: number): JobUpdate {
    return this.db.transaction(() => {
      const { update } = this.checkClaimer(poolId, jobId, nodeId)
      if (update !== 'ok') return update
      if ('result' in outcome) this.finishStmt.run('done', JSON.stringify(outcome.result), null, now, jobId)
      else this.finishStmt.run('failed', null, outcome.error, now, jobId)
      return update
    }).immediate()
  }

  /** Delete jobs that finished before `before`, with their tokens; returns how many. */
  forgetFinishedBefore (before: number): number { return this.deleteFinished.run(before).changes }

  tokenCount (jobId: string): number { return (this.countTokens.get(jobId) as { n: number }).n }

  /** Streamed tokens from index `from` on. */
  tokens (jobId: string, from: number): string[] { return this.tokensAfter.all(jobId, from).map((r) => r.text) }
}
