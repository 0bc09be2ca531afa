import { embedding, forwardEmbedded, type AllReduce, type ShardedModel } from '../forward.js'
import { createRunState, type RunState } from '../state.js'
import { planeAllReduce } from '../tensor-plane/all-reduce.js'
import type { FrameHeader } from '../tensor-plane/frame.js'
import type { FrameDrop, TensorPlane } from '../tensor-plane/plane.js'

export interface SessionOptions {
  readonly plane: TensorPlane
  readonly job: number
  readonly epoch: number
  /** node ids in ring order, this one included */
  readonly members: readonly string[]
  readonly model: ShardedModel
  readonly positions: number
  /** how long an all-reduce step waits for the other partials */
  readonly timeoutMs: number
  /** the job's non-tensor frames (the leader's 'token' frames: embedding rows); see planeAllReduce */
  readonly other?: (peerId: string, h: FrameHeader, payload: Float32Array) => FrameDrop | null
}

/** A job attempt's use of this member's shard of the model; released when the attempt ends, so a host can free it. */
export interface ModelLease {
  readonly model: ShardedModel
  readonly release: () => void
}

/** Time spent in one member's share of a job: matrix work, and waiting on the all-reduces. */
export interface SessionTimes { positions: number, computeMs: number, networkMs: number }

/**
 * One member's part of one job attempt: its shard's run state (KV cache of its own heads) and the
 * all-reduce over the job's members, on the job's epoch. Leader and members run the same layers;
 * the leader embeds each token (and sends the row to the members) and computes the logits.
 */
export interface JobSession {
  readonly state: RunState
  /** the leader: the position from `token`'s embedding row; the logits (vocab,) */
  lead: (token: number, pos: number) => Promise<Float32Array>
  /** a member: the position from the leader's embedding row `x` (dim,) */
  follow: (x: Float32Array, pos: number) => Promise<void>
  readonly times: SessionTimes
  close: () => void
}

export function openSession (o: SessionOptions): JobSession {
  const state = createRunState(o.model.config, o.model.shard, o.positions)
  const reduce = planeAllReduce({ plane: o.plane, job: o.job, epoch: o.epoch, members: o.members, nLayers: o.model.config.nLayers, timeoutMs: o.timeoutMs, other: o.other })
  const times: SessionTimes = { positions: 0, computeMs: 0, networkMs: 0 }
  const timed: AllReduce = async (v) => {
    const t = performance.now()
    try { await reduce.allReduce(v) } finally { times.networkMs += performance.now() - t }
  }
  const layers = async (x: Float32Array, pos: number): Promise<void> => {
    const t = performance.now()
    const network = times.networkMs
    try {
      state.x.set(x)
      await forwardEmbedded(o.model, state, pos, timed)
    } finally {
      times.computeMs += performance.now() - t - (times.networkMs - network)
      times.positions++
    }
  }
  return {
    state,
    times,
    lead: async (token, pos) => {
      await layers(embedding(o.model, token), pos)
      const t = performance.now()
      await o.model.matmuls.classifier(state.x, state.logits)
      times.computeMs += performance.now() - t
      return state.logits
    },
    follow: layers,
    close: () => { reduce.close() }
  }
}
