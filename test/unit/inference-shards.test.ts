import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { forward, forwardLayers } from '../../src/inference/forward.js'
import { inProcessAllReduce } from '../helpers/in-process-reduce.js'
import { loadShardModel, type EngineName } from '../../src/inference/model.js'
import { argmax } from '../../src/inference/sampler.js'
import { shardForColumns } from '../../src/inference/shard.js'
import { createRunState } from '../../src/inference/state.js'

const golden = JSON.parse(readFileSync('test/fixtures/golden/stories260K-greedy.json', 'utf8')) as { argmax_trace: { prompt_token_ids: number[], argmax_per_position_64: number[] } }
const cases: Array<[EngineName, number[], number[]]> = (['ts', 'wasm', 'native', 'onnx'] as const).flatMap((engine): Array<[EngineName, number[], number[]]> => [
  [engine, [0, 4096, 8192], [2, 2]],
  [engine, [0, 2000, 6500, 8192], [1, 2, 1]]
])

describe('tensor-parallel split of the forward pass, each member loading only its shard', () => {
  it.each(cases)('%s kernels, ring columns %j: the summed shards reproduce the golden greedy run', async (engine, bounds, kvHeads) => {
    const trace = golden.argmax_trace
    // member 0 samples, so only it loads the classifier; the others skip it
    const members = await Promise.all(bounds.slice(1).map(async (end, i) => {
      const { model } = await loadShardModel({
        checkpointPath: 'models/stories260K/stories260K.bin',
        tokenizerPath: 'models/stories260K/tok512.bin',
        shard: (c) => shardForColumns(c, bounds[i], end),
        engine: { name: engine, threads: 1 },
        withClassifier: i === 0
      })
      return { m: model, state: createRunState(model.config, model.shard, 64) }
    }))
    expect(members.map(({ m }) => m.shard.kvHeadEnd - m.shard.kvHeadStart)).toEqual(kvHeads)
    const [sampler, ...others] = members
    const reduces = inProcessAllReduce(members.length)
    let token = trace.prompt_token_ids[0]
    for (let pos = 0; pos < 64; pos++) {
      const [logits] = await Promise.all([
        forward(sampler.m, sampler.state, token, pos, reduces[0]),
        ...others.map(async ({ m, state }, i) => { await forwardLayers(m, state, token, pos, reduces[i + 1]) })
      ])
      const pick = argmax(logits)
      expect(pick, `position ${pos}`).toBe(trace.argmax_per_position_64[pos])
      token = pos + 1 < trace.prompt_token_ids.length ? trace.prompt_token_ids[pos + 1] : pick
    }
    await Promise.all(members.map(async ({ m }) => { await m.matmuls.close() }))
  })
})
