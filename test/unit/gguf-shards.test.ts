import { describe, expect, it } from 'vitest'
import { readGguf } from '../../src/inference/gguf/reader.js'
import { llmConfig, modelTensors } from '../../src/inference/gguf/architecture.js'
import { evenRanges } from '../../src/inference/job/plan.js'
import type { LlmEngineName } from '../../src/inference/llm/engine.js'
import { createLlmState, embedRows, forwardBatch, forwardRows, logitsOf } from '../../src/inference/llm/forward.js'
import { llmModel, loadGguf, loadGgufShard } from '../../src/inference/llm/load.js'
import { llmShardDims, llmShardForColumns, llmUnits } from '../../src/inference/llm/shard-plan.js'
import { nativeKernels } from '../../src/inference/native.js'
import { inProcessAllReduce } from '../helpers/in-process-reduce.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'

const path = (name: string): string => sharedPath(`models/gguf/${name}.gguf`)
const engines: LlmEngineName[] = typeof nativeKernels() === 'string' ? ['wasm'] : ['wasm', 'native']

describe('GGUF shard plan', () => {
  it.skipIf(SHARED_DIR === null)('puts attention and FFN cuts on block boundaries, gives every unit to one member, and lets rings outnumber kv heads', async () => {
    const f = await readGguf(path('llama3-test.q4_k_m')) // 8 heads of 32, 2 kv heads, Q4_K output projection: 8 heads a unit
    const c = llmConfig(f)
    const u = llmUnits(c, modelTensors(f, c))
    expect(u).toEqual({ headsPerUnit: 8, hiddenPerUnit: 256 })
    for (const n of [1, 2, 3, 5]) {
      const shards = evenRanges(Array.from({ length: n }, (_, i) => `m${i}`)).map((m) => llmShardForColumns(c, u, m.start, m.end))
      expect(shards[0].headStart).toBe(0)
      expect(shards[n - 1].headEnd).toBe(c.nHeads)
      expect(shards[n - 1].hiddenEnd).toBe(c.hidden)
      expect(shards[0].vocabStart).toBe(0)
      expect(shards[n - 1].vocabEnd).toBe(c.vocabSize)
      for (let i = 1; i < n; i++) {
        expect(shards[i].headStart).toBe(shards[i - 1].headEnd)
        expect(shards[i].hiddenStart).toBe(shards[i - 1].hiddenEnd)
        expect(shards[i].vocabStart).toBe(shards[i - 1].vocabEnd)
        expect(shards[i].vocabStart % 16).toBe(0) // whole groups of the native kernels' interleaved rows
      }
      for (const s of shards) expect(s.hiddenStart % 256).toBe(0)
    }
    // Llama 3 8B's shape (32 heads of 128, 8 kv heads, K-quants): 16 attention units, so a ring of 12 splits attention too
    const big = { ...c, nHeads: 32, nKvHeads: 8, headDim: 128, hidden: 14336 }
    const bu = { headsPerUnit: 256 / 128, hiddenPerUnit: 256 }
    const twelve = evenRanges(Array.from({ length: 12 }, (_, i) => `m${i}`)).map((m) => llmShardForColumns(big, bu, m.start, m.end))
    expect(twelve.every((s) => s.headEnd > s.headStart)).toBe(true)
    // a member whose heads start inside a kv group reads that kv head too (its cache computed twice)
    const d = llmShardDims(big, twelve[1])
    expect(d.kvHeadStart * 4 + d.headOffset).toBe(twelve[1].headStart)
  })

  it.skipIf(SHARED_DIR === null)('grows units towards 256 columns where the model keeps 8 of them, and never below a block', async () => {
    const f = await readGguf(path('qwen2-test.q8_0'))
    const c = llmConfig(f)
    const q8 = { layers: [{ wo: { type: 8 }, down: { type: 8 } }] }
    const f16 = { layers: [{ wo: { type: 1 }, down: { type: 1 } }] }
    const k = { layers: [{ wo: { type: 12 }, down: { type: 14 } }] }
    // Llama 3.2 1B's shape: 32 heads of 64, hidden 8192
    const wide = { ...c, nHeads: 32, headDim: 64, hidden: 8192 }
    expect(llmUnits(wide, q8)).toEqual({ headsPerUnit: 4, hiddenPerUnit: 256 })
    expect(llmUnits(wide, k)).toEqual({ headsPerUnit: 4, hiddenPerUnit: 256 })
    // the 110M shape: 12 heads of 64 stay one a unit (4 a unit would leave 3 units), hidden 2048 makes 8 units of 256
    const small = { ...c, nHeads: 12, headDim: 64, hidden: 2048 }
    expect(llmUnits(small, q8)).toEqual({ headsPerUnit: 1, hiddenPerUnit: 256 })
    // tiny test shapes keep block-sized units, and float types take 32 columns at least
    const tiny = { ...c, nHeads: 8, headDim: 8, hidden: 172 }
    expect(llmUnits(tiny, q8)).toEqual({ headsPerUnit: 4, hiddenPerUnit: 32 })
    expect(llmUnits(tiny, f16)).toEqual({ headsPerUnit: 4, hiddenPerUnit: 32 })
  })
})

describe.skipIf(SHARED_DIR === null).each(['llama3-test.q4_k_m', 'qwen3-test.q4_k_m', 'qwen2-test.q8_0', 'stories260K.q4_0'])('%s split across ring members, each reading only its slices', (name) => {
  it.each(engines.flatMap((e) => [2, 3].map((n) => [e, n] as const)))('%s kernels, %i members: the summed shards give the single device\'s logits', async (engine, n) => {
    const whole = llmModel(await loadGguf(path(name), undefined, engine), engine, 1)
    const tokens = [1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203, 29889, 13, 450, 11203, 338].map((t) => t % whole.config.vocabSize)
    const ref = createLlmState(whole, tokens.length + 1, 8, 8)
    const expected: Float32Array[] = []
    for (let at = 0; at < tokens.length; at += 8) expected.push((await forwardBatch(whole, ref, tokens.slice(at, at + 8), at, 0)).slice())

    const f = await readGguf(path(name))
    const c = llmConfig(f)
    const u = llmUnits(c, modelTensors(f, c))
    const members = await Promise.all(evenRanges(Array.from({ length: n }, (_, i) => `m${i}`)).map(async (m, i) => {
      const g = await loadGgufShard(f, 'not-checked', llmShardForColumns(c, u, m.start, m.end), i === 0 ? 'leader' : 'member', engine)
      const model = llmModel(g, engine, 1)
      return { model, state: createLlmState(model, tokens.length + 1, 8, 8) }
    }))
    expect(members[1].model.weights.tokEmb).toBeNull()
    expect(members.reduce((rows, m) => rows + m.model.weights.output.rows, 0)).toBe(c.vocabSize) // the classifier's rows, split
    const reduces = inProcessAllReduce(n)
    for (let at = 0, k = 0; at < tokens.length; at += 8, k++) {
      const chunk = tokens.slice(at, at + 8)
      embedRows(members[0].model, chunk, members[0].state.x)
      const rows = members[0].state.x.slice(0, chunk.length * c.dim)
      await Promise.all(members.map(async ({ model, state }, i) => {
        state.x.set(rows)
        await forwardRows(model, state, chunk.length, at, reduces[i])
      }))
      // every member's rows of the classifier, joined in member order, as the leader gathers them
      const slices = members.map(({ model, state }) => logitsOf(model, state, chunk.length, 0))
      for (let t = 0; t < chunk.length; t++) {
        const want = expected[k].subarray(t * c.vocabSize, (t + 1) * c.vocabSize)
        const got = new Float32Array(c.vocabSize)
        let at0 = 0
        members.forEach(({ model }, i) => {
          const rows = model.weights.output.rows
          got.set(slices[i].subarray(t * rows, (t + 1) * rows), at0)
          at0 += rows
        })
        // bit for bit: the split products are summed unit by unit in float64, on one device as in the ring
        let differ = 0
        for (let j = 0; j < c.vocabSize; j++) if (got[j] !== want[j]) differ++
        expect(differ, `position ${at + t}: logits that differ from one device's`).toBe(0)
      }
    }
  })
})
