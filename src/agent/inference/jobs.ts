import type { Stream } from '@libp2p/interface'
import type { PartialFormat } from '../../inference/tensor-plane/q8-partials.js'
import { randomBytes, randomInt } from 'node:crypto'
import { MeshError, UsageError } from '../../errors.js'
import { ChatNotSupportedError, JobCancelledError, jobRecord, NoPoolError, type ActiveJob, type InferenceEvent, type InferenceRequest, type InferenceStats, type JobResult, type ServedJob } from './events.js'
import { generateWith } from '../../inference/generate.js'
import { RingNotReadyError } from '../../inference/job/errors.js'
import { LeaderRun, type LeaderDeps, type MemberStats, type RingView } from '../../inference/job/leader.js'
import type { Sharding } from '../../inference/job/plan.js'
import type { ModelLease } from '../../inference/job/session.js'
import { llmSharding, type LlmShard } from '../../inference/llm/shard-plan.js'
import { serveJob } from '../../inference/job/member.js'
import { JOB_PROTOCOL } from '../../inference/job/messages.js'
import { createSampler } from '../../inference/sampler.js'
import { llama2cSharding, type Shard } from '../../inference/shard.js'
import { encode } from '../../inference/tokenizer.js'
import type { RingStatus } from '../net/pool-ring.js'
import type { Logger } from '../log.js'
import { leadGgufJob } from './gguf-job.js'
import { libp2pChannel } from './job-channel.js'
import type { ModelHost } from './models.js'
import type { MemberStreams, TensorLinks } from './tensor-links.js'


export interface JobsComponents {
  readonly net: MemberStreams & {
    poolIds: () => string[]
    ringStatus: (poolId: string) => RingStatus | undefined
    /** the model id a member's heartbeats announce */
    modelOf: (poolId: string, nodeId: string) => string | undefined
  }
  readonly links: TensorLinks
  readonly models: ModelHost
  readonly selfId: string
  readonly log: Logger
}

export interface JobsConfig {
  /** an all-reduce step, a member's answer, a token from the leader: a member that takes longer is lost */
  readonly stepTimeoutMs: number
  /** how long a new job waits for a converged ring before "ring not ready" */
  readonly ringReadyMs: number
  /** after a failure, how long to wait for the ring to move to a new epoch before re-planning anyway */
  readonly epochWaitMs: number
  /** how long a job keeps failing over before it gives up */
  readonly failoverMs: number
  /** jobs kept for `mesh inference-stats` */
  readonly historySize: number
  /** how the partial sums of jobs led here travel */
  readonly partials: PartialFormat
  /** how long the last API job stays kept on the ring, with its KV cache, for a request that extends it */
  readonly keepMs: number
}

/** The last API job, parked on its members between requests. */
interface KeptJob {
  readonly run: LeaderRun<LlmShard>
  readonly poolId: string
  readonly modelId: string
  readonly timer: NodeJS.Timeout
}

/** How many tokens two sequences share from their start. */
export const sharedPrefix = (a: readonly number[], b: readonly number[]): number => {
  let n = 0
  while (n < a.length && n < b.length && a[n] === b[n]) n++
  return n
}

export function lanJobDefaults (): JobsConfig {
  // a dead member closes its TCP link at once; the timeout only catches a hung one, and must not
  // fire on a busy laptop
  return { stepTimeoutMs: 10_000, ringReadyMs: 15_000, epochWaitMs: 15_000, failoverMs: 45_000, historySize: 20, partials: 'exact', keepMs: 300_000 }
}

/**
 * Distributed inference on this agent: as a member, it serves /mesh/job streams from the leaders
 * of its pools; as a leader, it runs the jobs `mesh inference` asks for across the pool's ring.
 */
export class JobService {
  private readonly history: JobResult[] = []
  private readonly totals = { jobs: 0, failed: 0, cancelled: 0, generated_tokens: 0, failovers: 0 }
  private readonly leading = new Map<string, ActiveJob>()
  private readonly serving = new Set<ServedJob>()
  /** the last API job, kept on the ring with its KV cache for a request that extends it */
  private kept: KeptJob | undefined
  /** where each GGUF job's notices go: the request that runs on it now */
  private readonly sinks = new WeakMap<LeaderRun<LlmShard>, { emit: (e: InferenceEvent) => void }>()
  private started = false

  constructor (private readonly c: JobsComponents, private readonly cfg: JobsConfig = lanJobDefaults()) {}

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    // each job a member serves holds one stream: room for many concurrent jobs
    await this.c.net.handleMemberProtocol(JOB_PROTOCOL, async (stream, from) => { await this.serve(stream, from) }, 64)
  }

  async stop (): Promise<void> {
    this.endKept()
    await this.c.models.stop()
  }

  stats (): InferenceStats {
    return { totals: { ...this.totals }, jobs: [...this.history], active: { leading: [...this.leading.values()].map((j) => ({ ...j })), serving: [...this.serving].map((j) => ({ ...j })) } }
  }

  private async serve (stream: Stream, from: string): Promise<void> {
    const ch = libp2pChannel(stream)
    const open = await ch.receive(this.cfg.stepTimeoutMs)
    if (open?.type !== 'open') { ch.close(); return }
    if (open.leader !== from || !this.c.net.isAdmitted(from, open.poolId)) {
      await ch.send({ type: 'refused', reason: 'not-member', message: 'the sender does not hold a certificate for that pool, or is not the job\'s leader' }).catch(() => {})
      ch.close()
      return
    }
    const mine: ServedJob = { job: open.job, leader: from, pool_id: open.poolId, started_at: new Date().toISOString() }
    this.serving.add(mine)
    try {
      const served = this.c.models.served()
      const common = {
        plane: this.c.links.plane,
        modelId: served.identity.id,
        link: async (peers: readonly string[]) => { await this.c.links.link(open.poolId, peers) },
        epochOf: (poolId: string) => this.c.net.ringStatus(poolId)?.topology.epoch,
        timeoutMs: this.cfg.stepTimeoutMs
      }
      const outcome = served.format === 'gguf'
        ? await serveJob(open, ch, { ...common, sharding: llmSharding(served.config, served.units), modelFor: async (shard) => await this.c.models.leaseGguf(shard, 'member') })
        : await serveJob(open, ch, { ...common, sharding: llama2cSharding(served.config), modelFor: async (shard) => await this.c.models.lease(shard, 'member') })
      const detail = { job: open.job, leader: from, epoch: open.epoch, members: open.members.length }
      if (outcome.kind === 'refused') this.c.log.info({ ...detail, reason: outcome.reason, why: outcome.message }, 'refused a job')
      else if (outcome.kind === 'failed') this.c.log.info({ ...detail, err: outcome.error.message, positions: outcome.times.positions }, 'job ended early on this member')
      else this.c.log.info({ ...detail, ...outcome.times }, 'served a job')
    } catch (err) {
      this.c.log.error({ err: String(err) }, 'cannot serve a job')
      ch.close()
    } finally {
      this.serving.delete(mine)
    }
  }

  /**
   * Lead a job on a pool's ring; every event goes to `emit` as it happens. Once `signal` aborts,
   * the job ends at its next step (the members see their streams close and drop it) with a
   * JobCancelledError event.
   */
  async run (req: InferenceRequest, emit: (e: InferenceEvent) => void, signal?: AbortSignal): Promise<void> {
    let active: ActiveJob | undefined
    const jobEmit = (e: InferenceEvent): void => {
      // a token is where a generation loop calls back: throwing here unwinds it and its LeaderRun
      if (signal?.aborted === true && e.type === 'token') throw new JobCancelledError('the job was cancelled by its caller')
      if (e.type === 'started') { active = { job_id: e.jobId, pool_id: e.poolId, started_at: new Date().toISOString(), tokens: 0 }; this.leading.set(e.jobId, active) }
      if (e.type === 'token' && e.echo !== true && active !== undefined) active.tokens++
      emit(e)
    }
    try {
      const result = await this.lead(req, jobEmit, signal)
      this.totals.jobs++
      this.totals.generated_tokens += result.generated_tokens
      this.totals.failovers += result.failovers
      this.history.push(result)
      if (this.history.length > this.cfg.historySize) this.history.shift()
      emit({ type: 'done', result })
    } catch (err) {
      if (err instanceof JobCancelledError) this.totals.cancelled++
      else this.totals.failed++
      if (!(err instanceof MeshError)) this.c.log.error({ err }, 'inference job failed')
      emit({ type: 'error', error: err instanceof Error ? err.constructor.name : 'Error', usage: err instanceof UsageError, message: err instanceof Error ? err.message : String(err) })
    } finally {
      if (active !== undefined) this.leading.delete(active.job_id)
    }
  }

  private async lead (req: InferenceRequest, emit: (e: InferenceEvent) => void, signal: AbortSignal | undefined): Promise<JobResult> {
    const poolId = this.pickPool(req.poolId)
    const jobId = randomBytes(8).toString('hex')
    const served = this.c.models.served()
    // fail fast, before the prompt is encoded: no ring, no job
    await this.ringView(poolId)
    if (served.format === 'gguf') {
      const keep = req.keepCache === true
      return await leadGgufJob(this.c.models, served, req, { jobId, poolId }, emit, {
        reuse: async (promptIds, maxTokens) => await this.reuseKept(poolId, served.identity.id, promptIds, maxTokens, emit),
        open: (positions) => {
          // notices of a kept job go to whichever request runs on it now (reuseKept moves them)
          const sink = { emit }
          const run = new LeaderRun(this.leaderDeps(poolId, jobId, served.identity.id, (e) => { sink.emit(e) },
            llmSharding(served.config, served.units), async (shard) => await this.c.models.leaseGguf(shard, 'leader')), positions)
          this.sinks.set(run, sink)
          return run
        },
        // a cancelled job stops before each step (during a long prompt too)
        steps: (run) => async (tokens, pos0) => {
          if (signal?.aborted === true) throw new JobCancelledError('the job was cancelled by its caller')
          return await run.steps(tokens, pos0)
        },
        done: async (run, ok) => {
          // a run in use is never the kept one: reuseKept takes it out first
          if (!ok || !keep) return await this.endRun(run, ok)
          await run.park()
          this.keepJob({ run, poolId, modelId: served.identity.id })
          return []
        }
      })
    }
    if (req.messages !== undefined) throw new ChatNotSupportedError('chat needs a GGUF model with a chat template; this pool serves a llama2.c checkpoint (mesh start --model FILE.gguf), so use --prompt')
    const tokenizer = await this.c.models.tokenizer()
    const sampler = createSampler({ temperature: req.temperature, topP: req.topP, seed: BigInt(req.seed) })
    emit({ type: 'started', jobId, poolId })
    // the loop below prints each prompt token after the first (as run.c does) before it samples
    const promptTokens = encode(tokenizer, req.prompt).length
    emit({ type: 'prompt', tokens: promptTokens })
    let printed = 0
    let run: LeaderRun<Shard> | undefined
    try {
      // the leader's own shard is loaded when the job is planned, in LeaderRun
      const g = await generateWith(served.config, tokenizer, async (positions) => {
        run = new LeaderRun(this.leaderDeps(poolId, jobId, served.identity.id, emit, llama2cSharding(served.config), async (shard) => await this.c.models.lease(shard, 'leader')), positions)
        const step = run.step
        return async (token, pos) => {
          if (signal?.aborted === true) throw new JobCancelledError('the job was cancelled by its caller')
          return await step(token, pos)
        }
      }, {
        prompt: req.prompt,
        maxTokens: req.maxTokens,
        sampler,
        onToken: (id, piece) => {
          const echo = printed++ < promptTokens - 1
          emit({ type: 'token', id, piece: Buffer.from(piece).toString('base64'), ...(echo ? { echo: true as const } : {}) })
        }
      })
      const members = await run!.finish()
      return {
        ...jobRecord({ jobId, poolId }, served.identity.id, run!, members),
        kind: 'prompt',
        text: Buffer.from(g.printed).toString('utf8'),
        token_ids: g.tokenIds,
        prompt_token_ids: g.promptTokenIds,
        cached_tokens: 0,
        generated_tokens: g.generated,
        stop_reason: g.stopReason,
        tokens_per_second: g.tokensPerSecond,
        time_to_first_token_ms: g.firstTokenMs,
        total_ms: g.totalMs
      }
    } finally {
      run?.abort()
    }
  }

  /** A kept job of this pool and model whose fed tokens share a prefix with `promptIds` and whose cache holds the request, rewound to that prefix; otherwise the kept job ends. */
  private async reuseKept (poolId: string, modelId: string, promptIds: readonly number[], maxTokens: number, emit: (e: InferenceEvent) => void): Promise<{ run: LeaderRun<LlmShard>, cached: number } | undefined> {
    const k = this.kept
    if (k === undefined) return undefined
    this.kept = undefined
    clearTimeout(k.timer)
    const cached = Math.min(sharedPrefix(k.run.fed, promptIds), promptIds.length - 1)
    if (k.poolId !== poolId || k.modelId !== modelId || cached < 1 || promptIds.length + maxTokens > k.run.capacity) {
      await this.endRun(k.run, true)
      return undefined
    }
    const sink = this.sinks.get(k.run)
    if (sink !== undefined) sink.emit = emit
    await k.run.resume(cached)
    return { run: k.run, cached }
  }

  private keepJob (k: Omit<KeptJob, 'timer'>): void {
    this.endKept() // one kept job at a time: a newer one replaces it
    // unref: a kept job never holds the agent up at exit
    const timer = setTimeout(() => { if (this.kept?.run === k.run) this.endKept() }, this.cfg.keepMs)
    timer.unref()
    this.kept = { ...k, timer }
  }

  private endKept (): void {
    const k = this.kept
    if (k === undefined) return
    this.kept = undefined
    clearTimeout(k.timer)
    void this.endRun(k.run, true)
  }

  /** End a job on its members: their shares when it went well, nothing when it is given up. */
  private async endRun (run: LeaderRun<LlmShard>, ok: boolean): Promise<MemberStats[]> {
    if (!ok) { run.abort(); return [] }
    try { return await run.finish() } finally { run.abort() }
  }

  /** What a job's leader needs of this agent: the plane, member streams, the ring, its own shard. */
  private leaderDeps<S> (poolId: string, jobId: string, modelId: string, emit: (e: InferenceEvent) => void, sharding: Sharding<S>, modelFor: (shard: S) => Promise<ModelLease>): LeaderDeps<S> {
    return {
      plane: this.c.links.plane,
      poolId,
      modelId,
      sharding,
      modelFor,
      open: async (nodeId) => libp2pChannel(await this.c.net.openMemberStream(nodeId, JOB_PROTOCOL, AbortSignal.timeout(this.cfg.stepTimeoutMs))),
      link: async (peers) => { await this.c.links.link(poolId, peers) },
      ring: async (moveOn) => await this.ringView(poolId, moveOn),
      jobNumber: () => randomInt(1, 0xffffffff),
      notice: (message) => { this.c.log.warn({ jobId, message }, 'job notice'); emit({ type: 'notice', message }) },
      timeoutMs: this.cfg.stepTimeoutMs,
      failoverMs: this.cfg.failoverMs,
      partials: this.cfg.partials
    }
  }

  private pickPool (asked: string | undefined): string {
    const pools = this.c.net.poolIds()
    if (asked !== undefined) {
      const hits = pools.filter((p) => p.startsWith(asked))
      if (hits.length === 1) return hits[0]
      throw new NoPoolError(hits.length === 0 ? `this agent has no ring in pool ${asked}; see \`mesh pool-list\`` : `pool id ${asked} matches ${hits.length} pools; give more digits`)
    }
    if (pools.length === 1) return pools[0]
    if (pools.length === 0) throw new NoPoolError('this agent holds no pool certificate yet: join a pool (`mesh pool-join`) and wait for the admin to certify it')
    throw new NoPoolError(`this agent is in ${pools.length} pools; choose one with --pool-id`)
  }

  /** The pool's ring once converged with this node in it; with `moveOn`, first wait (bounded) for another epoch. */
  private async ringView (poolId: string, moveOn?: number): Promise<RingView> {
    const started = Date.now()
    let last: RingStatus | undefined
    for (;;) {
      last = this.c.net.ringStatus(poolId)
      const t = last?.topology
      const waitingForEpoch = moveOn !== undefined && t?.epoch === moveOn && Date.now() - started < this.cfg.epochWaitMs
      if (t !== undefined && last?.converged === true && !waitingForEpoch && t.members.some((m) => m.nodeId === this.c.selfId)) {
        return { epoch: t.epoch, members: t.members.map(({ nodeId, start, end }) => ({ nodeId, start, end, model: this.c.net.modelOf(poolId, nodeId) })) }
      }
      if (Date.now() - started > this.cfg.ringReadyMs + (moveOn === undefined ? 0 : this.cfg.epochWaitMs)) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const t = last?.topology
    throw new RingNotReadyError(t === undefined
      ? `this agent has no ring for pool ${poolId.slice(0, 16)} yet; check \`mesh ring-status\``
      : `the ring of pool ${poolId.slice(0, 16)} is not ready (epoch ${t.epoch}, ${t.members.length} members, not converged after ${this.cfg.ringReadyMs} ms); check \`mesh ring-status\``)
  }
}
