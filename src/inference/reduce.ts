/** Which all-reduce of a forward pass: a layer's attention or FFN half, for the chunk of positions that starts at `position`. */
export interface ReduceStep {
  readonly position: number
  readonly layer: number
  readonly kind: 'attention' | 'ffn'
}

/**
 * Sums a partial `dim` vector (or one per position of a chunk, row after row) over every member
 * of the ring, in place. On one device the partial is already the sum, so the local all-reduce
 * does nothing.
 */
export type AllReduce = (partial: Float32Array, at: ReduceStep) => void | Promise<void>
export const localAllReduce: AllReduce = () => {}
