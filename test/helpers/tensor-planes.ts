import type { ReduceStep } from '../../src/inference/reduce.js'
import { planeAllReduce, stepAt } from '../../src/inference/tensor-plane/all-reduce.js'
import { TensorPlane } from '../../src/inference/tensor-plane/plane.js'

export const PAIR_SECRET = Buffer.alloc(32, 7)

/** Members on 127.0.0.1, every pair connected (the lower ring index dials), all on epoch 1. */
export async function connectedPlanes (ids: readonly string[], maxPayloadBytes = 4 * 1024): Promise<TensorPlane[]> {
  const planes = ids.map((selfId) => new TensorPlane({ selfId, secretFor: (p) => ids.includes(p) ? PAIR_SECRET : undefined, maxPayloadBytes, epoch: 1 }))
  const addresses = await Promise.all(planes.map(async (p) => await p.listen()))
  for (let i = 0; i < planes.length; i++) {
    for (let j = i + 1; j < planes.length; j++) await planes[i].connect(ids[j], addresses[j].host, addresses[j].port)
  }
  return planes
}

/** The n-th all-reduce of a pass that goes position by position: two per layer, nLayers per position. */
export const nthStep = (n: number, nLayers: number): ReduceStep => ({ position: Math.floor(n / (2 * nLayers)), ...stepAt(n, nLayers) })

/** planeAllReduce on each plane, each call taken as the next step of a position-by-position pass. */
export function allReduces (planes: readonly TensorPlane[], job: number, nLayers: number): Array<{ allReduce: (v: Float32Array | Float64Array) => Promise<void>, close: () => void }> {
  const members = planes.map((p) => p.selfId)
  return planes.map((plane) => {
    const r = planeAllReduce({ plane, job, members, nLayers, timeoutMs: 10_000 })
    let calls = 0
    return { allReduce: async (v) => { await r.allReduce(v, nthStep(calls++, nLayers)) }, close: r.close }
  })
}
