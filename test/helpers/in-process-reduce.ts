import type { AllReduce } from '../../src/inference/reduce.js'

/**
 * An in-process stand-in for the ring's all-reduce, one function per member: each waits for every
 * member's partial, then all get the sum in member order, added in the partials' own precision
 * (float64 for GGUF's unit sums), as planeAllReduce adds them.
 */
export function inProcessAllReduce (members: number): AllReduce[] {
  let parts: Array<Float32Array | Float64Array | undefined> = new Array(members).fill(undefined)
  let waiters: Array<() => void> = []
  return Array.from({ length: members }, (_, i): AllReduce => async (partial) => {
    await new Promise<void>((resolve) => {
      parts[i] = partial
      waiters.push(resolve)
      if (waiters.length < members) return
      const sum = partial instanceof Float64Array ? new Float64Array(partial.length) : new Float32Array(partial.length)
      for (const p of parts) for (let j = 0; j < sum.length; j++) sum[j] += p![j]
      for (const p of parts) p!.set(sum)
      const done = waiters
      parts = new Array(members).fill(undefined)
      waiters = []
      for (const w of done) w()
    })
  })
}
