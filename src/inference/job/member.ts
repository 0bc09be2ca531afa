import type { FrameDrop, TensorPlane } from '../tensor-plane/plane.js'
import type { ControlChannel, JobOpen, Refusal } from './messages.js'
import { JobPlanError, planJob, type Sharding } from './plan.js'
import { openSession, type ModelLease, type SessionTimes } from './session.js'

export interface MemberDeps<S> {
  readonly plane: TensorPlane
  /** the model this member serves (ModelIdentity.id), and how its units split by ring columns */
  readonly modelId: string
  readonly sharding: Sharding<S>
  /** this member's part of the model for a shard, without the embedding and the classifier (the leader embeds and samples) */
  readonly modelFor: (shard: S) => Promise<ModelLease>
  /** bring up tensor-plane links to these members of the job */
  readonly link: (peers: readonly string[]) => Promise<void>
  /** the ring epoch this member is in, for the pool the job names */
  readonly epochOf: (poolId: string) => number | undefined
  /** how long an all-reduce step, or the wait for the leader's next token, may take */
  readonly timeoutMs: number
}

/** What became of a job on this member. */
export type MemberOutcome =
  | { kind: 'refused', reason: Refusal, message: string }
  | { kind: 'done', times: SessionTimes }
  | { kind: 'failed', error: Error, times: SessionTimes }

/** Why a job-open cannot be served here, or undefined when it can (checks cheapest first). */
export function refusalOf (open: JobOpen, selfId: string, modelId: string, epoch: number | undefined): { reason: Refusal, message: string } | undefined {
  if (epoch === undefined) return { reason: 'not-member', message: `this node has no ring in pool ${open.poolId}` }
  if (!open.members.some((m) => m.nodeId === selfId)) return { reason: 'not-member', message: `this node is not among the job's members` }
  if (!open.members.some((m) => m.nodeId === open.leader)) return { reason: 'bad-plan', message: 'the leader is not among the job\'s members' }
  if (open.epoch < epoch) return { reason: 'stale-epoch', message: `the job is planned on ring epoch ${open.epoch}; this member is at epoch ${epoch}` }
  if (open.modelId !== modelId) return { reason: 'model-mismatch', message: `this member serves model ${modelId.slice(0, 12)}, the job needs ${open.modelId.slice(0, 12)}` }
  return undefined
}

/**
 * Serve one job as a member: check the open, build this member's shard, bring up the tensor-plane
 * links, answer ready, then run a forward pass for each token the leader sends (over the tensor
 * plane) until the leader says end; then report the time spent. A failure ends the job here; the
 * leader sees the stream close and fails over.
 */
export async function serveJob<S> (open: JobOpen, channel: ControlChannel, deps: MemberDeps<S>): Promise<MemberOutcome> {
  const self = deps.plane.selfId
  const refusal = refusalOf(open, self, deps.modelId, deps.epochOf(open.poolId))
  const refuse = async (r: { reason: Refusal, message: string }): Promise<MemberOutcome> => {
    await channel.send({ type: 'refused', ...r }).catch(() => {})
    channel.close()
    return { kind: 'refused', ...r }
  }
  if (refusal !== undefined) return await refuse(refusal)
  let shard: S
  try {
    shard = planJob(deps.sharding, open.members).find((m) => m.nodeId === self)!.shard
  } catch (err) {
    if (err instanceof JobPlanError) return await refuse({ reason: 'bad-plan', message: err.message })
    throw err
  }
  const lease = await deps.modelFor(shard)
  if (open.batch > lease.model.maxBatch) {
    lease.release()
    return await refuse({ reason: 'bad-plan', message: `the job sends ${open.batch} positions a step; this member's model takes at most ${lease.model.maxBatch}` })
  }
  const feed = new InputFeed(lease.model.dim, open.batch)
  const session = openSession({
    plane: deps.plane,
    job: open.job,
    epoch: open.epoch,
    members: open.members.map((m) => m.nodeId),
    leader: open.leader,
    model: lease.model,
    positions: open.positions,
    batch: open.batch,
    partials: open.partials,
    timeoutMs: deps.timeoutMs,
    other: (peerId, h, payload) => h.kind !== 'token' ? 'wrong-step' : peerId !== open.leader ? 'not-leader' : feed.push(h.position, payload)
  })
  try {
    await deps.link(open.members.map((m) => m.nodeId).filter((id) => id !== self))
    await channel.send({ type: 'ready' })
    void followControl(channel, feed)
    for (;;) {
      const step = await feed.next(deps.timeoutMs)
      if (step === null) break
      const n = step.rows.length / lease.model.dim
      if (step.position + n > open.positions) throw new RangeError(`the leader sent positions up to ${step.position + n - 1}, beyond the ${open.positions} positions it opened`)
      await session.follow(step.rows, step.position)
    }
    await channel.send({ type: 'report', ...session.times })
    return { kind: 'done', times: session.times }
  } catch (err) {
    return { kind: 'failed', error: err instanceof Error ? err : new Error(String(err)), times: session.times }
  } finally {
    session.close()
    lease.release()
    channel.close()
  }
}

/**
 * The leader's word on the control stream while the job runs: `park` (the job is kept between two
 * requests), `resume` (the next request feeds again from a position; acknowledged, so no token frame
 * for it can arrive before the rewind), `end`, or the stream closing (a failover, a dead leader).
 */
async function followControl (channel: ControlChannel, feed: InputFeed): Promise<void> {
  for (;;) {
    const m = await channel.receive()
    if (m?.type === 'park') feed.park()
    else if (m?.type === 'resume') {
      if (!feed.rewind(m.position)) { feed.abort(new Error(`the leader resumed at position ${m.position}, past the ${feed.position} fed`)); return }
      await channel.send({ type: 'resumed' }).catch(() => {})
    } else {
      if (m?.type === 'end') feed.end()
      else feed.abort(new Error('the leader closed the job'))
      return
    }
  }
}

/** One step's input: the embedding rows of the tokens fed at `position`.. */
export interface FedStep { readonly position: number, readonly rows: Float32Array }

/**
 * The leader's input for each step, in order, as it arrives on the tensor plane: the embedding
 * rows (dim floats each, 1 to `batch` of them) of the tokens fed at the positions from the frame's
 * on. The leader can be at most one step ahead of a member (it needs the member's partials to
 * finish a step), so a frame for any other position is dropped. Between requests of a kept job it
 * is parked (no step timeout) until a rewind to the position the next request feeds from.
 */
export class InputFeed {
  private readonly queue = new Map<number, Float32Array>()
  private nextPush = 0
  /** the first position of the next step to hand out */
  private at = 0
  private waiter: ((v: Float32Array | null) => void) | undefined
  private timer: NodeJS.Timeout | undefined
  private failed: Error | undefined
  private ended = false
  private parked = false
  constructor (private readonly dim: number, private readonly batch = 1) {}

  get position (): number { return this.at }

  push (position: number, payload: Float32Array): FrameDrop | null {
    if (position !== this.nextPush) return 'wrong-step'
    const n = payload.length / this.dim
    if (!Number.isInteger(n) || n < 1 || n > this.batch || !payload.every(Number.isFinite)) return 'bad-token'
    this.nextPush += n
    const row = payload.slice() // the plane may reuse its buffer
    if (this.waiter !== undefined && position === this.at) { const w = this.waiter; this.waiter = undefined; w(row) } else this.queue.set(position, row)
    return null
  }

  end (): void { this.ended = true; this.waiter?.(null); this.waiter = undefined }
  abort (e: Error): void { this.failed = e; this.end() }
  /** Wait for the next request without a timeout (a waiting next() keeps waiting). */
  park (): void { this.parked = true; clearTimeout(this.timer) }

  /** Positions from `position` on come again (a kept job's next request); false past what was fed. */
  rewind (position: number): boolean {
    if (position > this.at) return false
    this.queue.clear()
    this.nextPush = position
    this.at = position
    this.parked = false
    return true
  }

  /** The next step's rows and position; null once the leader ended the job. */
  async next (timeoutMs: number): Promise<FedStep | null> {
    const take = (rows: Float32Array): FedStep => { const step = { position: this.at, rows }; this.at += rows.length / this.dim; return step }
    const queued = this.queue.get(this.at)
    if (queued !== undefined) { this.queue.delete(this.at); return take(queued) }
    if (this.failed !== undefined) throw this.failed
    if (this.ended) return null
    const got = await new Promise<Float32Array | null>((resolve, reject) => {
      // a parked job waits for the leader's next request as long as it takes; the leader ends it
      this.timer = this.parked ? undefined : setTimeout(() => { this.waiter = undefined; reject(new Error(`no input for position ${this.at} from the leader within ${timeoutMs} ms`)) }, timeoutMs)
      this.waiter = (v) => { clearTimeout(this.timer); resolve(v) }
    })
    if (got === null && this.failed !== undefined) throw this.failed
    return got === null ? null : take(got)
  }
}
