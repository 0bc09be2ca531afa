/** Which all-reduce of a forward pass: a layer's attention or FFN half, for the chunk of positions that starts at `position`. */
export interface ReduceStep {
  readonly position: number
  readonly layer: number
  readonly kind: 'attention' | 'ffn'
}

/**
 * Sums a partial `dim` vector (or one per position of a chunk, row after row) over every member
 * of the ring, in place. On one device the partial is already the sum, so the local all-reduce
 * does nothing. Float32 partials (llama2.c's) are summed in float32; float64 ones (GGUF's unit
 * sums, forward.ts) in float64, so the ring's sum is one device's.
 */
export type AllReduce = (partial: Float32Array | Float64Array, at: ReduceStep) => void | Promise<void>
export const localAllReduce: AllReduce = () => {}
