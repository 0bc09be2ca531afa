import { matchModel } from '../../ring/model-match.js'
import { AllReduceTimeoutError, TensorLinkError } from '../tensor-plane/errors.js'
import type { TensorPlane } from '../tensor-plane/plane.js'
import type { PartialFormat } from '../tensor-plane/q8-partials.js'
import { JobFailedError, MemberLostError, MemberRefusedError, RingNotReadyError } from './errors.js'
import { MAX_JOB_BATCH, type ControlChannel, type JobOpen } from './messages.js'
import { evenRanges, planJob, type JobMember, type PlannedMember, type Sharding } from './plan.js'
import { openSession, type JobSession, type ModelLease, type SessionTimes } from './session.js'

/** A ring member as the leader sees it: its columns, and the model id its heartbeats announce (undefined before they said). */
export interface RingMember extends JobMember {
  readonly model: string | undefined
}

/** A converged ring of the job's pool, as the leader plans on it. */
export interface RingView {
  readonly epoch: number
  /** in ring order, with column ranges */
  readonly members: readonly RingMember[]
}

export interface LeaderDeps<S> {
  readonly plane: TensorPlane
  readonly poolId: string
  readonly modelId: string
  readonly sharding: Sharding<S>
  /** the leader's shard, with the embedding and the classifier (it embeds and samples) */
  readonly modelFor: (shard: S) => Promise<ModelLease>
  /** open a control stream to a member (JobMessage over libp2p in the agent) */
  readonly open: (nodeId: string) => Promise<ControlChannel>
  /** bring up tensor-plane links to these members */
  readonly link: (peers: readonly string[]) => Promise<void>
  /**
   * A converged ring with this node in it (RingNotReadyError if none comes in time). With
   * `moveOn`, first wait (bounded) for the ring to leave that epoch: a failed member leaves it.
   */
  readonly ring: (moveOn?: number) => Promise<RingView>
  /** a fresh tensor-plane job number for each attempt */
  readonly jobNumber: () => number
  /** one line for the user: a failover, a member left out */
  readonly notice: (text: string) => void
  /** how long an all-reduce step or a member's answer may take */
  readonly timeoutMs: number
  /** how long a job keeps failing over before it gives up */
  readonly failoverMs: number
  /** how the partial sums travel: float32 (exact, the default) or 8-bit blocks */
  readonly partials?: PartialFormat
}

/** One member's share of a finished job, for `mesh inference` and `mesh inference-stats`. */
export interface MemberStats extends SessionTimes {
  readonly nodeId: string
  readonly start: number
  readonly end: number
  readonly heads: number // own query heads
  readonly hiddenUnits: number // own FFN units
  readonly leader: boolean
}

/** One try at running the job on one ring epoch. */
interface Attempt<S> {
  readonly job: number
  readonly epoch: number
  readonly batch: number
  readonly plan: ReadonlyArray<PlannedMember<S>>
  readonly session: JobSession
  readonly lease: ModelLease
  readonly channels: Map<string, ControlChannel>
}

const recoverable = (err: unknown): boolean =>
  err instanceof TensorLinkError || err instanceof AllReduceTimeoutError || err instanceof MemberLostError ||
  err instanceof MemberRefusedError || err instanceof RingNotReadyError

/**
 * The leader's side of a distributed job. `steps` runs a chunk of positions across the ring (one
 * all-reduce per layer half for the whole chunk) and returns the logits of the last, so a
 * generation loop drives it like the local forward pass; `step` is one position. When a member
 * dies or leaves, the step does not fail: the leader waits for the ring's next epoch, plans the
 * shards again over the members left, has them rebuild their KV caches by replaying every token
 * fed so far (in chunks), and carries on. With the same tokens fed, greedy output does not change.
 */
export class LeaderRun<S> {
  private attempt: Attempt<S> | null = null
  private readonly history: number[] = []
  /** members left out of this job, and why (a different model, not a member) */
  private readonly excluded = new Map<string, string>()
  private failingSince: number | null = null
  private lastEpoch: number | undefined
  /** this node's time over every attempt */
  readonly own: SessionTimes = { positions: 0, computeMs: 0, networkMs: 0 }
  failovers = 0

  constructor (private readonly deps: LeaderDeps<S>, private readonly positions: number) {}

  /** Run position `pos` on token `token` across the job's members; the logits (vocab,). */
  step = async (token: number, pos: number): Promise<Float32Array> => await this.steps([token], pos)

  /** Run positions pos0.. on `tokens` across the job's members, in chunks of the job's batch; the logits (vocab,) of the last. */
  steps = async (tokens: readonly number[], pos0: number): Promise<Float32Array> => {
    if (pos0 !== this.history.length || tokens.length === 0) throw new RangeError(`positions must follow on: fed ${this.history.length} so far, asked to feed ${tokens.length} at ${pos0}`)
    for (;;) {
      try {
        if (this.attempt === null) {
          this.attempt = await this.begin()
          await this.feedAll(this.attempt, this.history, 0)
        }
        const logits = await this.feedAll(this.attempt, tokens, pos0)
        this.history.push(...tokens)
        this.failingSince = null
        return logits
      } catch (err) {
        if (!recoverable(err)) { this.abort(); throw err }
        this.recover(err as Error)
      }
    }
  }

  private recover (err: Error): void {
    const now = Date.now()
    this.failingSince ??= now
    const failed = this.attempt
    this.drop()
    if (err instanceof RingNotReadyError && this.history.length === 0 && this.failovers === 0) throw err
    if (now - this.failingSince > this.deps.failoverMs) throw new JobFailedError(`the job could not continue within ${this.deps.failoverMs} ms of a failure: ${err.message}`)
    if (err instanceof MemberRefusedError && (err.reason === 'model-mismatch' || err.reason === 'not-member')) {
      this.leaveOut(err.nodeId, err.reason === 'model-mismatch' ? 'serves a different model' : 'is not a member of the ring')
      return
    }
    this.failovers++
    this.lastEpoch = failed?.epoch ?? this.lastEpoch
    this.deps.notice(`a member was lost at position ${this.history.length} (${err.message}); re-planning on the next ring epoch`)
  }

  /** `why` completes "it …" */
  private leaveOut (nodeId: string, why: string): void {
    this.excluded.set(nodeId, why)
    this.deps.notice(`member ${short(nodeId)} left out of this job: it ${why}`)
  }

  private async begin (): Promise<Attempt<S>> {
    const { deps } = this
    const self = deps.plane.selfId
    const view = await deps.ring(this.lastEpoch)
    // a member whose heartbeats announce another model would refuse the job: leave it out up front
    for (const m of view.members) {
      if (m.nodeId === self || this.excluded.has(m.nodeId)) continue
      const match = matchModel(deps.modelId, m.model)
      if (!match.serves) this.leaveOut(m.nodeId, match.text)
    }
    const serving = view.members.filter((m) => !this.excluded.has(m.nodeId))
    if (!serving.some((m) => m.nodeId === self)) throw new JobFailedError('this node is not in the ring it would lead the job on')
    const members = serving.length === view.members.length ? serving : evenRanges(serving.map((m) => m.nodeId))
    const plan = planJob(deps.sharding, members)
    const job = deps.jobNumber()
    const lease = await deps.modelFor(plan.find((m) => m.nodeId === self)!.shard)
    // a step's embedding rows and partials each go in one tensor-plane frame
    const batch = Math.max(1, Math.min(lease.model.maxBatch, MAX_JOB_BATCH, Math.floor(deps.plane.opts.maxPayloadBytes / (lease.model.partialBytes * lease.model.dim))))
    const session = openSession({ plane: deps.plane, job, epoch: view.epoch, members: plan.map((m) => m.nodeId), leader: self, model: lease.model, positions: this.positions, batch, partials: deps.partials, timeoutMs: deps.timeoutMs })
    const attempt: Attempt<S> = { job, epoch: view.epoch, batch, plan, session, lease, channels: new Map() }
    this.attempt = attempt
    const open: JobOpen = {
      type: 'open', job, poolId: deps.poolId, epoch: view.epoch, leader: self, modelId: deps.modelId, positions: this.positions, batch,
      partials: deps.partials,
      members: plan.map(({ nodeId, start, end }) => ({ nodeId, start, end }))
    }
    const others = plan.filter((m) => m.nodeId !== self).map((m) => m.nodeId)
    await Promise.all([
      deps.link(others),
      ...others.map(async (nodeId) => {
        let ch: ControlChannel
        try { ch = await deps.open(nodeId) } catch (err) { throw new MemberLostError(nodeId, `cannot open a job on member ${short(nodeId)}: ${(err as Error).message}`) }
        attempt.channels.set(nodeId, ch)
        await ch.send(open)
        const answer = await ch.receive(deps.timeoutMs)
        if (answer?.type === 'refused') throw new MemberRefusedError(nodeId, answer.reason, answer.message)
        if (answer?.type !== 'ready') throw new MemberLostError(nodeId, `member ${short(nodeId)} did not answer the job-open`)
      })
    ])
    return attempt
  }

  /** Feed tokens at pos0.. in chunks of the attempt's batch; the logits of the last (none for no tokens). */
  private async feedAll (a: Attempt<S>, tokens: readonly number[], pos0: number): Promise<Float32Array> {
    let logits: Float32Array = new Float32Array(0)
    for (let at = 0; at < tokens.length; at += a.batch) logits = await this.feed(a, tokens.slice(at, at + a.batch), pos0 + at)
    return logits
  }

  private async feed (a: Attempt<S>, tokens: readonly number[], pos0: number): Promise<Float32Array> {
    // the members hold no embedding table: each gets the tokens' rows
    const rows = a.session.embed(tokens)
    for (const nodeId of a.channels.keys()) this.deps.plane.send(nodeId, { kind: 'token', layer: 0, job: a.job, position: pos0 }, rows)
    return await a.session.lead(rows, pos0)
  }

  /** The KV positions the job's members hold, and the tokens fed into them so far. */
  get capacity (): number { return this.positions }
  get fed (): readonly number[] { return this.history }

  /** Keep the job on its members between two requests: they wait for `resume` or `end` without a step timeout. */
  async park (): Promise<void> {
    const a = this.attempt
    if (a === null) return
    try {
      await Promise.all([...a.channels.values()].map(async (ch) => { await ch.send({ type: 'park' }) }))
    } catch {
      this.drop() // a member gone: the next request replays what it needs on a new attempt
    }
  }

  /**
   * Feed again from position `p` (the next request shares the first p tokens fed): every member
   * rewinds and says so before any token frame of it goes out. A member lost meanwhile drops the
   * attempt; the next steps() re-plans and replays the p tokens, as after a failover.
   */
  async resume (p: number): Promise<void> {
    if (!Number.isInteger(p) || p < 0 || p > this.history.length) throw new RangeError(`cannot resume at ${p}: ${this.history.length} positions fed`)
    this.history.length = p
    const a = this.attempt
    if (a === null) return
    try {
      await Promise.all([...a.channels].map(async ([nodeId, ch]) => {
        await ch.send({ type: 'resume', position: p })
        const answer = await ch.receive(this.deps.timeoutMs)
        if (answer?.type !== 'resumed') throw new MemberLostError(nodeId, `member ${short(nodeId)} did not resume the kept job`)
      }))
    } catch {
      this.drop()
    }
  }

  /** Close the current attempt: its members see their control streams end and drop the job. */
  private drop (): void {
    const a = this.attempt
    if (a === null) return
    this.attempt = null
    this.own.positions += a.session.times.positions
    this.own.computeMs += a.session.times.computeMs
    this.own.networkMs += a.session.times.networkMs
    a.session.close()
    a.lease.release()
    for (const ch of a.channels.values()) ch.close()
  }

  abort (): void { this.drop() }

  /** End the job on every member and collect what each spent; members that do not report are left out. */
  async finish (): Promise<MemberStats[]> {
    const a = this.attempt
    if (a === null) return []
    const reports = await Promise.all([...a.channels].map(async ([nodeId, ch]) => {
      try {
        await ch.send({ type: 'end' })
        const r = await ch.receive(this.deps.timeoutMs)
        return r?.type === 'report' ? [nodeId, r] as const : undefined
      } catch {
        return undefined
      }
    }))
    this.drop()
    const byNode = new Map(reports.filter((r) => r !== undefined))
    const self = this.deps.plane.selfId
    return a.plan.flatMap((m) => {
      const times = m.nodeId === self ? this.own : byNode.get(m.nodeId)
      if (times === undefined) return []
      const { heads, hiddenUnits } = this.deps.sharding.units(m.shard)
      return [{ nodeId: m.nodeId, start: m.start, end: m.end, heads, hiddenUnits, leader: m.nodeId === self, positions: times.positions, computeMs: times.computeMs, networkMs: times.networkMs }]
    })
  }
}

const short = (id: string): string => id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id
