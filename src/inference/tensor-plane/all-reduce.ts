import type { AllReduce, ReduceStep } from '../reduce.js'
import { AllReduceTimeoutError, TensorLinkError } from './errors.js'
import type { FrameHeader } from './frame.js'
import type { FrameDrop, TensorPlane } from './plane.js'
import { dequantizePartial, quantizePartial, type PartialFormat } from './q8-partials.js'

export interface AllReduceOptions {
  readonly plane: TensorPlane
  readonly job: number
  /** Every member of the job in ring order, this one included: the order partials are summed in. */
  readonly members: readonly string[]
  /** The member that leads the job: it gathers the logits slices. Default: the first member. */
  readonly leader?: string
  readonly nLayers: number
  /** How partials travel: float32 (exact; the default) or 8-bit blocks (q8-partials.ts, 0.28× the bytes). */
  readonly partials?: PartialFormat
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

/** A partial as the frame's float32 words: a float64 partial's bytes as they are */
const words = (v: Float32Array | Float64Array): Float32Array => v instanceof Float64Array ? new Float32Array(v.buffer, v.byteOffset, 2 * v.length) : v

/** A peer's partial for one step, and the first position of the chunk it is for */
interface Partial { readonly position: number, readonly payload: Float32Array }

/**
 * A step's logits when every member holds some classifier rows: a member sends its slice to the
 * leader (and gets undefined); the leader gets every member's slice, in member order (its own in
 * its place), joined into the whole vocabulary.
 */
export type GatherLogits = (slice: Float32Array, position: number) => Promise<Float32Array> | undefined

export interface PlaneAllReduce {
  readonly allReduce: AllReduce
  readonly gatherLogits: GatherLogits
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
  const leader = opts.leader ?? members[0]
  const peers = members.filter((_, i) => i !== self)
  const received = new Map(peers.map((p) => [p, [] as Partial[]]))
  // a member sends one slice a step and cannot start the next before the leader's next rows: at most one queued
  const slices = new Map(peers.map((p) => [p, [] as Partial[]]))
  const peerStep = new Map(peers.map((p) => [p, 0]))
  type Waiter = { resolve: (v: Partial) => void, reject: (e: Error) => void }
  const waiting = new Map<string, Waiter>()
  const waitingSlice = new Map<string, Waiter>()
  const gone = new Set<string>()
  let step = 0
  let sum: Float32Array | Float64Array = new Float32Array(0)
  let scratch = new Float32Array(0) // a q8 partial, dequantized

  plane.openJob(job, {
    epoch: opts.epoch,
    frame: (peerId: string, h: FrameHeader, payload: Float32Array): FrameDrop | null => {
      if (h.kind === 'logits') return sliceFrame(peerId, h, payload)
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
      for (const w of [waiting, waitingSlice]) {
        w.get(peerId)?.reject(new TensorLinkError(`member ${peerId} left job ${job}: its tensor-plane link closed`))
        w.delete(peerId)
      }
    }
  })

  function sliceFrame (peerId: string, h: FrameHeader, payload: Float32Array): FrameDrop | null {
    if (plane.selfId !== leader) return 'not-leader'
    const queue = slices.get(peerId)
    if (queue === undefined) return 'not-member'
    if (queue.length > 0) return 'too-far-ahead'
    if (!payload.every(Number.isFinite)) return 'bad-logits'
    deliver(waitingSlice, queue, peerId, { position: h.position, payload })
    return null
  }

  function deliver (waiters: Map<string, Waiter>, queue: Partial[], peerId: string, part: Partial): void {
    const waiter = waiters.get(peerId)
    if (waiter === undefined) { queue.push(part); return }
    waiters.delete(peerId)
    waiter.resolve(part)
  }

  const take = async (queues: Map<string, Partial[]>, waiters: Map<string, Waiter>, peerId: string): Promise<Partial> => {
    const queued = queues.get(peerId)?.shift()
    if (queued !== undefined) return queued
    if (gone.has(peerId)) throw new TensorLinkError(`member ${peerId} left job ${job}: its tensor-plane link closed`)
    return await new Promise((resolve, reject) => { waiters.set(peerId, { resolve, reject }) })
  }
  const partialOf = async (peerId: string): Promise<Partial> => await take(received, waiting, peerId)

  /** Resolves as `work` does, or rejects once the step has waited timeoutMs for its peers. */
  const bounded = async <T>(work: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => { reject(new AllReduceTimeoutError(`job ${job}: ${what} did not arrive within ${opts.timeoutMs} ms`)) }, opts.timeoutMs)
    })
    try {
      return await Promise.race([work, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  const exchange = async (partial: Float32Array | Float64Array, at: ReduceStep): Promise<void> => {
    const q8 = opts.partials === 'q8'
    const wide = partial instanceof Float64Array
    const n = partial.length
    if (scratch.length !== n) scratch = new Float32Array(n)
    // with q8, this member sums its own partial as the peers see it, so every member holds the same sum
    const wire = q8 ? quantizePartial(wide ? Float32Array.from(partial) : partial) : words(partial)
    if (q8) { dequantizePartial(wire, n, scratch); partial.set(scratch) }
    for (const p of peers) plane.send(p, { ...at, job }, wire)
    step++
    const parts = await bounded(Promise.all(peers.map(partialOf)), `partials for layer ${at.layer} position ${at.position}`)
    // float64 partials are summed in float64 (and float32 in float32): in member order, the same additions on every member
    if (sum.length !== n || (sum instanceof Float64Array) !== wide) sum = wide ? new Float64Array(n) : new Float32Array(n)
    sum.fill(0)
    let next = 0
    for (let m = 0; m < members.length; m++) {
      const part = m === self ? undefined : parts[next++]
      if (part !== undefined && part.position !== at.position) throw new TensorLinkError(`job ${job}: member ${members[m]} sent layer ${at.layer} for position ${part.position}, this member is at ${at.position}`)
      let v: Float32Array | Float64Array = partial
      if (part !== undefined && q8) {
        if (!dequantizePartial(part.payload, n, scratch)) throw new TensorLinkError(`job ${job}: member ${members[m]} sent a q8 partial of ${part.payload.length} words that is not ${n} values`)
        v = scratch
      } else if (part !== undefined) {
        const expected = wide ? 2 * n : n
        if (part.payload.length !== expected) throw new TensorLinkError(`job ${job}: member ${members[m]} sent ${part.payload.length} words, expected ${expected}`)
        v = wide ? new Float64Array(part.payload.buffer, part.payload.byteOffset, n) : part.payload
      }
      for (let i = 0; i < n; i++) sum[i] += v[i]
    }
    partial.set(sum)
  }

  const gather = async (own: Float32Array, position: number): Promise<Float32Array> => {
    const parts = await bounded(Promise.all(peers.map(async (p) => await take(slices, waitingSlice, p))), `logits for position ${position}`)
    let next = 0
    const all = members.map((id, m) => {
      if (m === self) return own
      const part = parts[next++]
      if (part.position !== position) throw new TensorLinkError(`job ${job}: member ${id} sent logits for position ${part.position}, this member is at ${position}`)
      return part.payload
    })
    const out = new Float32Array(all.reduce((n, v) => n + v.length, 0))
    let at = 0
    for (const v of all) { out.set(v, at); at += v.length }
    return out
  }

  // a job of one member has nothing to exchange: no promise, so the forward pass does not wait on the event loop
  const allReduce: AllReduce = (partial, at) => peers.length === 0 ? undefined : exchange(partial, at)
  const gatherLogits: GatherLogits = (slice, position) => {
    if (plane.selfId === leader) return peers.length === 0 ? undefined : gather(slice, position)
    plane.send(leader, { kind: 'logits', layer: 0, job, position }, slice)
    return undefined
  }
  return { allReduce, gatherLogits, close: () => { plane.closeJob(job) } }
}
