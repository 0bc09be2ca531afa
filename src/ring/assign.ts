import { createHash } from 'node:crypto'
import type { NodeId } from './liveness.js'

/** The virtual column space every model's work is split over (LLaMA-70B's hidden size). */
export const RING_COLUMNS = 8192

/** `even`: equal ranges; `capacity`: ranges proportional to each member's measured capacity. */
export type ShardMode = 'even' | 'capacity'

/** What the ring needs to know about a live, certified member. */
export interface RingCandidate {
  readonly nodeId: NodeId
  /** Capacity weight for `capacity` mode, a positive whole number (see `capacityWeight`). */
  readonly weight: number
}

export interface RingSlot {
  readonly nodeId: NodeId
  readonly position: number
  /** Column range [start, end) within 0..RING_COLUMNS. */
  readonly start: number
  readonly end: number
}

export interface Ring {
  readonly poolId: string
  readonly mode: ShardMode
  readonly slots: readonly RingSlot[]
  /** sha256 hex of the assignment: equal on two members exactly when their rings are equal. */
  readonly hash: string
}

/** Ring order key: sha256 of the node id, so positions do not follow id prefixes or join order. */
export function ringOrderKey (nodeId: NodeId): string {
  return createHash('sha256').update(nodeId, 'utf8').digest('hex')
}

/**
 * Split `total` columns into contiguous whole-column parts proportional to `weights`
 * (largest remainder; ties go to the earlier position). A member whose share rounds to zero
 * still gets one column, taken from the largest part, so nobody in the ring is idle.
 */
export function splitColumns (weights: readonly number[], total = RING_COLUMNS): number[] {
  const n = weights.length
  if (n === 0) return []
  if (n > total) throw new RangeError(`cannot split ${total} columns over ${n} members`)
  if (weights.some((w) => !Number.isSafeInteger(w) || w <= 0)) throw new RangeError('weights must be positive whole numbers')
  const sum = weights.reduce((a, b) => a + b, 0)
  const exact = weights.map((w) => (w * total) / sum)
  const parts = exact.map((x) => Math.floor(x))
  let left = total - parts.reduce((a, b) => a + b, 0)
  const byRemainder = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i)
  for (const { i } of byRemainder) {
    if (left === 0) break
    parts[i] = (parts[i] ?? 0) + 1
    left--
  }
  for (let i = 0; i < n; i++) {
    if (parts[i] !== 0) continue
    const largest = parts.indexOf(Math.max(...parts))
    parts[largest] = (parts[largest] ?? 0) - 1
    parts[i] = 1
  }
  return parts
}

/**
 * The ring: a pure function of the live certified members. Everyone who sees the same set
 * computes the same ring and the same hash.
 */
export function assignRing (poolId: string, members: readonly RingCandidate[], mode: ShardMode): Ring {
  const ordered = [...members]
    .map((m) => ({ m, key: ringOrderKey(m.nodeId) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map(({ m }) => m)
  const sizes = splitColumns(ordered.map((m) => (mode === 'capacity' ? m.weight : 1)))
  const slots: RingSlot[] = []
  let start = 0
  ordered.forEach((m, position) => {
    const end = start + (sizes[position] ?? 0)
    slots.push({ nodeId: m.nodeId, position, start, end })
    start = end
  })
  return { poolId, mode, slots, hash: ringHash(poolId, mode, slots) }
}

function ringHash (poolId: string, mode: ShardMode, slots: readonly RingSlot[]): string {
  const h = createHash('sha256').update(`mesh-ring-v1\n${poolId}\n${mode}\n${RING_COLUMNS}\n`)
  for (const s of slots) h.update(`${s.position} ${s.nodeId} ${s.start} ${s.end}\n`)
  return h.digest('hex')
}

/** Capacity a member reports in its heartbeat. */
export interface Capacity {
  readonly cores: number
  readonly memoryMiB: number
  /** Measured matrix-vector speed in MFLOP/s; 0 until measured. */
  readonly matmulMflops: number
}

/**
 * Weights for `capacity` mode: measured matmul speed when every member has measured it
 * (mixing units would be meaningless), otherwise core counts.
 */
export function capacityWeights (capacities: readonly Capacity[]): number[] {
  const measured = capacities.length > 0 && capacities.every((c) => c.matmulMflops > 0)
  return capacities.map((c) => Math.max(1, Math.round(measured ? c.matmulMflops : c.cores)))
}
