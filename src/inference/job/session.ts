import type { AllReduce } from '../reduce.js'
import { planeAllReduce } from '../tensor-plane/all-reduce.js'
import type { FrameHeader } from '../tensor-plane/frame.js'
import type { FrameDrop, TensorPlane } from '../tensor-plane/plane.js'
import type { PartialFormat } from '../tensor-plane/q8-partials.js'

/**
 * One member's part of a model as a job runs it (a llama2.c shard, a GGUF shard): the layers'
 * share it computes, and for a leader the embedding and the classifier.
 */
export interface JobModel {
  readonly dim: number
  readonly nLayers: number
  /** the most positions one step takes: a prompt goes through the ring this many at a time */
  readonly maxBatch: number
  /**
   * Who computes the logits: the leader alone (it holds the whole classifier), or every member its
   * rows of it ('split'), gathered by the leader after each step, so no member waits out a whole
   * classifier between two tokens.
   */
  readonly classifier: 'leader' | 'split'
  /** bytes of one partial value on the wire: 4 (llama2.c's float32 sums) or 8 (GGUF's float64 unit sums) */
  readonly partialBytes: 4 | 8
  /** a run with its own KV cache of `positions`, taking up to `batch` positions a step */
  open: (positions: number, batch: number) => JobRun
}

export interface JobRun {
  /** the leader: the embedding rows of `tokens` (n·dim floats) */
  embed: (tokens: readonly number[]) => Float32Array
  /** rows x (n·dim) at positions pos0..pos0+n-1 through this member's part of every layer, partials summed by `reduce` */
  layers: (x: Float32Array, pos0: number, n: number, reduce: AllReduce) => Promise<void>
  /** the logits of the last position of the latest layers(): the leader's whole vocabulary, or with a split classifier this member's rows */
  logits: () => Promise<Float32Array>
}

export interface SessionOptions {
  readonly plane: TensorPlane
  readonly job: number
  readonly epoch: number
  /** node ids in ring order, this one included */
  readonly members: readonly string[]
  /** the member that embeds and samples */
  readonly leader: string
  readonly model: JobModel
  readonly positions: number
  /** positions per step (the job-open's batch) */
  readonly batch: number
  /** how the partial sums travel (the job-open's; default float32) */
  readonly partials?: PartialFormat
  /** how long an all-reduce step waits for the other partials */
  readonly timeoutMs: number
  /** the job's non-tensor frames (the leader's 'token' frames: embedding rows); see planeAllReduce */
  readonly other?: (peerId: string, h: FrameHeader, payload: Float32Array) => FrameDrop | null
}

/** A job attempt's use of this member's shard of the model; released when the attempt ends, so a host can free it. */
export interface ModelLease {
  readonly model: JobModel
  readonly release: () => void
}

/** Time spent in one member's share of a job: matrix work, and waiting on the all-reduces. */
export interface SessionTimes { positions: number, computeMs: number, networkMs: number }

/**
 * One member's part of one job attempt: its shard's run (KV cache of its own heads) and the
 * all-reduce over the job's members, on the job's epoch. Leader and members run the same layers;
 * the leader embeds each chunk of tokens (and sends the rows to the members) and gets the logits
 * (its own, or every member's rows of them).
 */
export interface JobSession {
  /** the leader: the embedding rows of `tokens`, to send to the members and then lead */
  embed: (tokens: readonly number[]) => Float32Array
  /** the leader: positions pos0.. from their embedding rows; the logits (vocab,) of the last */
  lead: (rows: Float32Array, pos0: number) => Promise<Float32Array>
  /** a member: positions pos0.. from the leader's embedding rows */
  follow: (rows: Float32Array, pos0: number) => Promise<void>
  readonly times: SessionTimes
  close: () => void
}

export function openSession (o: SessionOptions): JobSession {
  const run = o.model.open(o.positions, o.batch)
  const reduce = planeAllReduce({ plane: o.plane, job: o.job, epoch: o.epoch, members: o.members, leader: o.leader, nLayers: o.model.nLayers, partials: o.partials, timeoutMs: o.timeoutMs, other: o.other })
  const times: SessionTimes = { positions: 0, computeMs: 0, networkMs: 0 }
  const timed: AllReduce = (v, at) => {
    const t = performance.now()
    const pending = reduce.allReduce(v, at)
    if (pending === undefined) return
    return pending.finally(() => { times.networkMs += performance.now() - t })
  }
  const timedLogits = async (): Promise<Float32Array> => {
    const t = performance.now()
    const own = await run.logits()
    times.computeMs += performance.now() - t
    return own
  }
  const layers = async (rows: Float32Array, pos0: number): Promise<void> => {
    const n = rows.length / o.model.dim
    if (!Number.isInteger(n) || n < 1 || n > o.batch) throw new RangeError(`a step of ${rows.length} floats is not 1 to ${o.batch} rows of ${o.model.dim}`)
    const t = performance.now()
    const network = times.networkMs
    try {
      await run.layers(rows, pos0, n, timed)
    } finally {
      times.computeMs += performance.now() - t - (times.networkMs - network)
      times.positions += n
    }
  }
  return {
    times,
    embed: run.embed,
    lead: async (rows, pos0) => {
      await layers(rows, pos0)
      const own = await timedLogits()
      if (o.model.classifier === 'leader') return own
      const t = performance.now()
      const all = reduce.gatherLogits(own, pos0)
      if (all === undefined) return own
      try { return await all } finally { times.networkMs += performance.now() - t }
    },
    follow: async (rows, pos0) => {
      await layers(rows, pos0)
      if (o.model.classifier === 'split') reduce.gatherLogits(await timedLogits(), pos0)
    },
    close: () => { reduce.close() }
  }
}
