import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { forward, type AllReduce } from '../../src/inference/forward.js'
import { loadModel, shardedModel } from '../../src/inference/model.js'
import { argmax } from '../../src/inference/sampler.js'
import { shardForColumns } from '../../src/inference/shard.js'
import { createRunState } from '../../src/inference/state.js'

/** An in-process stand-in for the ring's all-reduce: waits for every member, then gives each the sum. */
function inProcessAllReduce (members: number): AllReduce {
  let waiting: Array<{ partial: Float32Array, done: () => void }> = []
  return async (partial) => {
    await new Promise<void>((resolve) => {
      waiting.push({ partial, done: resolve })
      if (waiting.length < members) return
      const sum = new Float32Array(partial.length)
      for (const w of waiting) for (let i = 0; i < sum.length; i++) sum[i] += w.partial[i]
      for (const w of waiting) { w.partial.set(sum); w.done() }
      waiting = []
    })
  }
}

describe('tensor-parallel split of the forward pass', () => {
  it.each(['ts', 'wasm', 'onnx'] as const)('three uneven shards summed by an all-reduce reproduce the greedy run of one device (%s kernels)', async (engine) => {
    const golden = JSON.parse(readFileSync('test/fixtures/golden/stories260K-greedy.json', 'utf8')) as { argmax_trace: { prompt_token_ids: number[], argmax_per_position_64: number[] } }
    const trace = golden.argmax_trace
    const loaded = await loadModel({ checkpointPath: 'models/stories260K/stories260K.bin', tokenizerPath: 'models/stories260K/tok512.bin', forWasm: engine === 'wasm' })
    const bounds = [0, 2000, 6500, 8192]
    const members = await Promise.all(bounds.slice(1).map(async (end, i) => {
      const m = await shardedModel(loaded, { name: engine, threads: 1 }, shardForColumns(loaded.checkpoint.config, bounds[i], end))
      return { m, state: createRunState(m.config, m.shard, 64) }
    }))
    expect(members.map(({ m }) => m.shard.kvHeadEnd - m.shard.kvHeadStart)).toEqual([1, 2, 1])
    const allReduce = inProcessAllReduce(members.length)
    let token = trace.prompt_token_ids[0]
    for (let pos = 0; pos < 64; pos++) {
      const logits = await Promise.all(members.map(({ m, state }) => forward(m, state, token, pos, allReduce)))
      const picks = logits.map(argmax)
      expect(new Set(picks).size, `members agree at position ${pos}`).toBe(1)
      expect(picks[0], `position ${pos}`).toBe(trace.argmax_per_position_64[pos])
      token = pos + 1 < trace.prompt_token_ids.length ? trace.prompt_token_ids[pos + 1] : picks[0]
    }
    await Promise.all(members.map(async ({ m }) => { await m.matmuls.close() }))
  })
})
