import { describe, expect, it } from 'vitest'
import { createLlmState, forwardBatch, type LlmModel } from '../../src/inference/llm/forward.js'
import { readGguf } from '../../src/inference/gguf/reader.js'
import { goldenAccuracy, goldenCases } from '../helpers/gguf-golden.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'
import type { LlmEngineName } from '../../src/inference/llm/engine.js'
import { llmModel, loadGgufWeights } from '../../src/inference/llm/load.js'
import { nativeKernels } from '../../src/inference/native.js'

/**
 * Teacher-forced logits against ../shared/golden/gguf: for every case, mesh must be at least as
 * accurate as llama.cpp (its mean top-16 error against the exact float64 logits at most 1.25×
 * llama.cpp's + 0.01, and the exact argmax at no fewer positions than llama.cpp's, minus one).
 */
const SHARED = new URL(`file://${sharedPath('')}/`)
const MODELS = ['stories260K.f32', 'stories260K.q8_0', 'stories260K.q4_0', 'llama3-test.q4_k_m', 'qwen2-test.q8_0', 'qwen3-test.q4_k_m', 'llama2-test.f16']

/** Logits at every position of `ids`, fed in batches of `batch`. */
async function teacherForced (m: LlmModel, ids: readonly number[], batch: number): Promise<Float32Array[]> {
  const s = createLlmState(m, ids.length, batch, batch)
  const rows: Float32Array[] = []
  for (let at = 0; at < ids.length; at += batch) {
    const chunk = ids.slice(at, at + batch)
    const logits = await forwardBatch(m, s, chunk, at, 0)
    for (let t = 0; t < chunk.length; t++) rows.push(logits.slice(t * m.config.vocabSize, (t + 1) * m.config.vocabSize))
  }
  return rows
}

const native = nativeKernels()
if (typeof native === 'string') console.warn(`GGUF goldens: skipping the native kernels (${native})`)
const engines: LlmEngineName[] = typeof native === 'string' ? ['ts', 'wasm'] : ['ts', 'wasm', 'native']

describe.skipIf(SHARED_DIR === null).each(MODELS)('%s against the exact logits', (name) => {
  it.each(engines)('is at least as accurate as llama.cpp on %s kernels', async (engine) => {
    const g = await loadGgufWeights(await readGguf(new URL(`models/gguf/${name}.gguf`, SHARED).pathname), undefined, engine)
    const m = llmModel(g, engine, 2)
    // the TypeScript reference is slow on the 150k vocabularies: one case there, every case natively
    const cases = engine === 'ts' ? goldenCases(name).slice(0, 1) : goldenCases(name)
    for (const [i, c] of cases.entries()) {
      const rows = await teacherForced(m, c.token_ids, i % 2 === 0 ? 16 : 1) // batched and token by token
      const { meanErr, argmaxAgree } = goldenAccuracy(rows, c)
      const ref = c.llamacpp_vs_exact
      expect(meanErr, `${c.prompt}: mean top-16 error ${meanErr} vs llama.cpp ${ref.mean_max_abs_err_top16}`).toBeLessThanOrEqual(1.25 * ref.mean_max_abs_err_top16 + 0.01)
      expect(argmaxAgree, `${c.prompt}: argmax agrees at ${argmaxAgree} vs llama.cpp ${ref.argmax_agree}`).toBeGreaterThanOrEqual(ref.argmax_agree - 1)
    }
  }, 120_000)
})
