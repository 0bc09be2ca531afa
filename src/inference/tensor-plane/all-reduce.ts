import type { AllReduce, ReduceStep } from '../reduce.js'
import { AllReduceTimeoutError, TensorLinkError } from './errors.js'
import type { FrameHeader } from './frame.js'
import type { FrameDrop, TensorPlane } from './plane.js'

export interface AllReduceOptions {
  readonly plane: TensorPlane
  readonly job: number
  /** Every member of the job in ring order, this one included: the order partials are summed in. */
  readonly members: readonly string[]
  readonly nLayers: number
  /** How long a step waits for the other partials before the job is given up (failover's cue). */
  readonly timeoutMs: number
  /** The ring epoch the job runs on: frames from another epoch are dropped. Default: the plane's. */
  readonly epoch?: number
  /** The job's other frames (the leader's 'token' frames), which share the job's handler on the plane. */
  readonly other?: (peerId: string, h: FrameHeader, payload: Float32Array) => FrameDrop | null
}

/**
 * The layer and half of forward's n-th all-reduce call: two per layer (attention, then FFN), nLayers
 * per chunk of positions. A chunk's first position is checked when its partial is used, since a
 * peer one step ahead may already be in a chunk this member has not started.
 */
export function stepAt (step: number, nLayers: number): Omit<ReduceStep, 'position'> {
  return { layer: Math.floor(step / 2) % nLayers, kind: step % 2 === 0 ? 'attention' : 'ffn' }
}

/** A peer's partial for one step, and the first position of the chunk it is for */
interface Partial { readonly position: number, readonly payload: Float32Array }

export interface PlaneAllReduce {
  readonly allReduce: AllReduce
  close: () => void
}

/**
 * The all-to-all all-reduce (as distributed-llama does it): each member sends its partial to every
 * other member and sums all partials itself. Partials are added in ring order, not arrival order,
 * so every member computes the same float32 additions and holds a bit-identical sum.
 * A peer can be at most one step ahead (it cannot finish a step without our partial), so each
 * peer's queue holds at most one partial; a frame further ahead is dropped.
 */
export function planeAllReduce (opts: AllReduceOptions): PlaneAllReduce {
  const { plane, job, members, nLayers } = opts
  const self = members.indexOf(plane.selfId)
  if (self < 0) throw new RangeError(`${plane.selfId} is not a member of job ${job}`)
  const peers = members.filter((_, i) => i !== self)
  const received = new Map(peers.map((p) => [p, [] as Partial[]]))
  const peerStep = new Map(peers.map((p) => [p, 0]))
  const waiting = new Map<string, { resolve: (v: Partial) => void, reject: (e: Error) => void }>()
  const gone = new Set<string>()
  let step = 0
  let sum = new Float32Array(0)

  plane.openJob(job, {
    epoch: opts.epoch,
    frame: (peerId: string, h: FrameHeader, payload: Float32Array): FrameDrop | null => {
      if (h.kind !== 'attention' && h.kind !== 'ffn') return opts.other?.(peerId, h, payload) ?? 'wrong-step'
      const queue = received.get(peerId)
      if (queue === undefined) return 'not-member'
      const at = peerStep.get(peerId) ?? 0
      const want = stepAt(at, nLayers)
      if (h.layer !== want.layer || h.kind !== want.kind) return 'wrong-step'
      if (at > step) return 'too-far-ahead'
      peerStep.set(peerId, at + 1)
      const part = { position: h.position, payload }
      const waiter = waiting.get(peerId)
      if (waiter !== undefined) {
        waiting.delete(peerId)
        waiter.resolve(part)
      } else {
        queue.push(part)
      }
      return null
    },
    linkClosed: (peerId: string) => {
      if (!received.has(peerId)) return // not a member of this job
      gone.add(peerId)
      waiting.get(peerId)?.reject(new TensorLinkError(`member ${peerId} left job ${job}: its tensor-plane link closed`))
      waiting.delete(peerId)
    }
  })

  const partialOf = async (peerId: string): Promise<Partial> => {
    const queued = received.get(peerId)?.shift()
    if (queued !== undefined) return queued
    if (gone.has(peerId)) throw new TensorLinkError(`member ${peerId} left job ${job}: its tensor-plane link closed`)
    return await new Promise((resolve, reject) => { waiting.set(peerId, { resolve, reject }) })
  }

  const exchange = async (partial: Float32Array, at: ReduceStep): Promise<void> => {
    for (const p of peers) plane.send(p, { ...at, job }, partial)
    step++
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => { reject(new AllReduceTimeoutError(`job ${job}: partials for layer ${at.layer} position ${at.position} did not arrive within ${opts.timeoutMs} ms`)) }, opts.timeoutMs)
    })
    try {
      const parts = await Promise.race([Promise.all(peers.map(partialOf)), timeout])
      if (sum.length !== partial.length) sum = new Float32Array(partial.length)
      sum.fill(0)
      let next = 0
      for (let m = 0; m < members.length; m++) {
        const part = m === self ? undefined : parts[next++]
        if (part !== undefined && part.position !== at.position) throw new TensorLinkError(`job ${job}: member ${members[m]} sent layer ${at.layer} for position ${part.position}, this member is at ${at.position}`)
        const v = part?.payload ?? partial
        if (v.length !== sum.length) throw new TensorLinkError(`job ${job}: member ${members[m]} sent ${v.length} floats, expected ${sum.length}`)
        for (let i = 0; i < sum.length; i++) sum[i] += v[i]
      }
      partial.set(sum)
    } finally {
      clearTimeout(timer)
    }
  }

  // a job of one member has nothing to exchange: no promise, so the forward pass does not wait on the event loop
  const allReduce: AllReduce = (partial, at) => peers.length === 0 ? undefined : exchange(partial, at)
  return { allReduce, close: () => { plane.closeJob(job) } }
}
