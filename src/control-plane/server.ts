/**
 * The HTTP app: raw JSON bodies (signatures cover the exact bytes, so parsing waits until the
 * request is authenticated), one error format `{ error: reason, message }`, every refusal counted
 * by reason, and the routes.
 *
 * Exports: ControlPlaneConfig, defaultConfig, ControlPlane, buildControlPlane.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify'
import type { ShardMode } from '../ring/assign.js'
import { VerifiedCerts, type AuthContext } from './auth.js'
import type { Database } from './db.js'
import { REFUSAL_STATUS, Refusal, RefusalCounters, reasonForStatus, type RefusalReason } from './refusals.js'
import { deviceRoutes } from './routes/devices.js'
import { jobRoutes } from './routes/jobs.js'
import { revocationRoutes } from './routes/revocation.js'
import { ringRoutes } from './routes/ring.js'
import { JobStore } from './store/jobs.js'
import { PoolStore } from './store/pools.js'
import { RingStore } from './store/ring.js'
import { Waiters } from './waiters.js'

export interface ControlPlaneConfig {
  /** Pool ID → root public key; undefined serves every pool whose members register it */
  readonly servedPools: ReadonlyMap<string, Uint8Array> | undefined
  /** larger bodies get 413: jobs and results are text, 1 MiB is far above a real one */
  readonly bodyLimitBytes: number
  readonly memberTtlMs: number
  readonly shardMode: ShardMode
  readonly leaseMs: number
  readonly maxQueuedJobs: number
  readonly maxWaitMs: number
  /** finished jobs are deleted this long after they finished */
  readonly jobRetentionMs: number
}

export function defaultConfig (): ControlPlaneConfig {
  return {
    servedPools: undefined,
    bodyLimitBytes: 1024 * 1024,
    // three missed heartbeats at the agent's 2 s interval, like the gossip ring's LAN timers
    memberTtlMs: 6_000,
    shardMode: 'even',
    // a whole generation on a slow box streams tokens far more often than this
    leaseMs: 60_000,
    maxQueuedJobs: 1000,
    maxWaitMs: 30_000,
    // a day for the submitter to fetch a result; the store stays small on a box that runs for months
    jobRetentionMs: 24 * 3600_000
  }
}

export interface ControlPlane {
  readonly app: FastifyInstance
  readonly refusals: RefusalCounters
  /** forget nonces the timestamp window refuses anyway and finished jobs past retention (a timer calls it) */
  sweep: () => { nonces: number, jobs: number }
  /** stops long polls, the sweeper and the HTTP server (the caller closes the database) */
  close: () => Promise<void>
}

const VERSION = '1'
const SWEEP_MS = 30_000

export function buildControlPlane (db: Database, log: FastifyBaseLogger, config: ControlPlaneConfig, now: () => number = Date.now): ControlPlane {
  const app: FastifyInstance = Fastify({ loggerInstance: log, bodyLimit: config.bodyLimitBytes,
    // heartbeats every few seconds per device would drown the log; refusals and errors are logged below
    logController: new LogController({ disableRequestLogging: true })
  })
  const refusals = new RefusalCounters()
  const waiters = new Waiters()
  const pools = new PoolStore(db)
  const auth: AuthContext = { verified: new VerifiedCerts(), pools, servedPools: config.servedPools, now }
  const startedAt = now()

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })

  app.setNotFoundHandler(async (request) => {
    throw new Refusal('not-found', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`)
  })
  app.setErrorHandler(async (err: FastifyError | Refusal, request, reply) => {
    let reason: RefusalReason
    let message: string
    if (err instanceof Refusal) {
      reason = err.reason
      message = err.message
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      reason = reasonForStatus(err.statusCode)
      message = err.message
    } else {
      request.log.error({ err, url: request.url }, 'internal error')
      return reply.code(500).send({ error: 'internal', message: 'internal error; see the control plane log' })
    }
    refusals.count(reason)
    request.log.info({ reason, method: request.method, url: request.url, ip: request.ip }, `refused: ${message}`)
    return reply.code(REFUSAL_STATUS[reason]).send({ error: reason, message })
  })

  app.get('/health', async () => ({
    status: 'ok',
    version: VERSION,
    uptimeMs: now() - startedAt,
    // a query, so a store that stopped working shows here (a full check would grow with the store)
    pools: (db.prepare('SELECT count(*) AS n FROM pools').get() as { n: number }).n,
    refused: refusals.snapshot()
  }))
  const ring = new RingStore(db)
  deviceRoutes(app, auth, pools)
  revocationRoutes(app, auth, pools, ring)
  ringRoutes(app, auth, ring, config)
  const jobs = new JobStore(db)
  jobRoutes(app, auth, jobs, waiters, config)

  const sweep = (): { nonces: number, jobs: number } => ({
    nonces: pools.forgetNoncesBefore(now()),
    jobs: jobs.forgetFinishedBefore(now() - config.jobRetentionMs)
  })
  const sweeper = setInterval(() => {
    try { sweep() } catch (err) { log.error({ err }, 'sweep failed') }
  }, SWEEP_MS)
  sweeper.unref()

  return {
    app,
    refusals,
    sweep,
    close: async () => {
      clearInterval(sweeper)
      waiters.close()
      await app.close()
    }
  }
}
