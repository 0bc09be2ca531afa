import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { forward, type ShardedModel } from '../../src/inference/forward.js'
import { generate } from '../../src/inference/generate.js'
import { loadModel, shardedModel, type EngineName, type LoadedModel } from '../../src/inference/model.js'
import { nativeKernels } from '../../src/inference/native.js'
import { argmax, createSampler } from '../../src/inference/sampler.js'
import { createRunState } from '../../src/inference/state.js'
import { wholeModel } from '../../src/inference/shard.js'
import { encode, loadTokenizer } from '../../src/inference/tokenizer.js'
import { wasmMatmuls } from '../../src/inference/wasm-matmuls.js'

interface GoldenGeneration {
  prompt: string
  steps: number
  token_ids: number[]
  prompt_token_ids: number[]
  positions_run: number
  stopped_on_bos: boolean
  output_text: string
  stdout_exact: string
}
interface Golden {
  generations: GoldenGeneration[]
  argmax_trace: { prompt_token_ids: number[], argmax_per_position_64: number[], max_logit_per_position_64: number[], logits_pos0_first8: number[] }
  tokenizer_encodings: Record<string, Array<{ text: string, token_ids_with_bos: number[] }>>
}

const golden = JSON.parse(readFileSync('test/fixtures/golden/stories260K-greedy.json', 'utf8')) as Golden
const CHECKPOINT = 'models/stories260K/stories260K.bin'
const TOKENIZER = 'models/stories260K/tok512.bin'

let model: LoadedModel
let inWasmHeap: LoadedModel
beforeAll(async () => {
  model = await loadModel({ checkpointPath: CHECKPOINT, tokenizerPath: TOKENIZER })
  inWasmHeap = await loadModel({ checkpointPath: CHECKPOINT, tokenizerPath: TOKENIZER, forWasm: true })
})
const loadedFor = (engine: EngineName): LoadedModel => engine === 'wasm' ? inWasmHeap : model

// the C kernels are built at install (scripts/build-native.mjs); without a compiler they are skipped, visibly
const nativeMissing = nativeKernels()
if (typeof nativeMissing === 'string') console.warn(`skipping the native engine's golden tests: ${nativeMissing}`)
const unavailable = (engine: EngineName): boolean => engine === 'native' && typeof nativeMissing === 'string'

describe('stories260K against llama2.c run.c', () => {
  it('loads the header llama2.c wrote', () => {
    expect(model.checkpoint.config).toEqual({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true })
    expect(model.identity.checkpointSha256).toBe('b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696')
    expect(model.identity.tokenizerSha256).toBe('037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312')
    expect(inWasmHeap.identity).toEqual(model.identity)
  })

  for (const engine of ['ts', 'wasm', 'native', 'onnx'] as const) {
    it.skipIf(unavailable(engine))(`matches the argmax trace and max logits at every position (${engine} kernels)`, async () => {
      const t = golden.argmax_trace
      const m = await shardedModel(loadedFor(engine), { name: engine, threads: 1 })
      const state = createRunState(m.config, m.shard, t.argmax_per_position_64.length)
      let token = t.prompt_token_ids[0]
      for (let pos = 0; pos < t.argmax_per_position_64.length; pos++) {
        const logits = await forward(m, state, token, pos)
        if (pos === 0) t.logits_pos0_first8.forEach((v, i) => expect(logits[i]).toBeCloseTo(v, 4))
        const best = argmax(logits)
        expect(best, `position ${pos}`).toBe(t.argmax_per_position_64[pos])
        expect(logits[best]).toBeCloseTo(t.max_logit_per_position_64[pos], 3)
        token = pos + 1 < t.prompt_token_ids.length ? t.prompt_token_ids[pos + 1] : best
      }
      await m.matmuls.close()
    })
  }

  // every case on the three single-thread engines; onnxruntime's per-call overhead makes it slow here
  for (const engine of ['ts', 'wasm', 'native'] as const) {
    for (const g of golden.generations) {
      it.skipIf(unavailable(engine))(`generates run.c's greedy output for ${JSON.stringify(g.prompt)} with ${g.steps} steps (${engine} kernels)`, async () => {
        const result = await generate(await shardedModel(loadedFor(engine), { name: engine, threads: 1 }), model.tokenizer, {
          prompt: g.prompt,
          maxTokens: g.steps - g.prompt_token_ids.length + 1, // run.c's steps count prompt positions
          sampler: createSampler({ temperature: 0, topP: 0.9, seed: 1n })
        })
        expect(result.promptTokenIds).toEqual(g.prompt_token_ids)
        expect(result.tokenIds).toEqual(g.token_ids)
        expect(result.stopReason).toBe(g.stopped_on_bos ? 'bos' : 'max-tokens')
        expect(Buffer.from(result.printed).toString('utf8')).toBe(g.output_text)
        expect(Buffer.from(result.printed).toString('utf8') + '\n').toBe(g.stdout_exact)
      })
    }
  }
})

describe('stories260K on wasm kernels over worker threads', () => {
  // chunks of 256 weights, so that even stories260K's 64×64 products are split between the threads
  let threaded: ShardedModel
  beforeAll(async () => {
    const { config, weights } = inWasmHeap.checkpoint
    const shard = wholeModel(config)
    if (inWasmHeap.heap === null) throw new Error('loaded without a wasm heap')
    threaded = { config, weights, shard, matmuls: await wasmMatmuls(config, weights, shard, inWasmHeap.heap, 3, { minParallelWeights: 0, chunkWeights: 256 }) }
  })
  afterAll(async () => { await threaded.matmuls.close() })

  for (const g of golden.generations) {
    it(`generates run.c's greedy output for ${JSON.stringify(g.prompt)} with ${g.steps} steps (3 threads)`, async () => {
      const result = await generate(threaded, model.tokenizer, {
        prompt: g.prompt,
        maxTokens: g.steps - g.prompt_token_ids.length + 1,
        sampler: createSampler({ temperature: 0, topP: 0.9, seed: 1n })
      })
      expect(result.tokenIds).toEqual(g.token_ids)
      expect(Buffer.from(result.printed).toString('utf8')).toBe(g.output_text)
    })
  }
})

describe('tokenizer encodings against run.c', () => {
  for (const [file, cases] of Object.entries(golden.tokenizer_encodings)) {
    if (!Array.isArray(cases)) continue
    it(`encodes ${cases.length} texts like run.c with ${file}`, async () => {
      const path = file.startsWith('stories260K/') ? `models/${file}` : `test/fixtures/${file}`
      const tok = await loadTokenizer(path, file.startsWith('stories260K/') ? 512 : 32000)
      for (const c of cases) expect(encode(tok, c.text), JSON.stringify(c.text)).toEqual(c.token_ids_with_bos)
    })
  }
})

describe.skipIf(typeof nativeMissing === 'string')('stories260K on the native kernels over OpenMP threads', () => {
  for (const g of golden.generations) {
    it(`generates run.c's greedy output for ${JSON.stringify(g.prompt)} with ${g.steps} steps (3 threads)`, async () => {
      const result = await generate(await shardedModel(model, { name: 'native', threads: 3 }), model.tokenizer, {
        prompt: g.prompt,
        maxTokens: g.steps - g.prompt_token_ids.length + 1,
        sampler: createSampler({ temperature: 0, topP: 0.9, seed: 1n })
      })
      expect(result.tokenIds).toEqual(g.token_ids)
    })
  }
})
