import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadCheckpoint, tensorViews } from '../../src/inference/checkpoint.js'
import type { CheckpointVersion, ModelConfig } from '../../src/inference/config.js'
import { forward } from '../../src/inference/forward.js'
import { generate } from '../../src/inference/generate.js'
import { loadModel, shardedModel } from '../../src/inference/model.js'
import { createSampler } from '../../src/inference/sampler.js'
import { createRunState } from '../../src/inference/state.js'
import { parseShape, writeCheckpoint, writeSyntheticCheckpoint } from '../../src/inference/synth.js'

const TOKENIZER = 'models/stories260K/tok512.bin'
const dir = mkdtempSync(path.join(tmpdir(), 'mesh-formats-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const golden = JSON.parse(readFileSync('test/fixtures/golden/stories260K-greedy.json', 'utf8')) as { generations: Array<{ prompt: string, steps: number, token_ids: number[] }> }
const case64 = golden.generations.find((g) => g.prompt === 'Once upon a time' && g.steps === 64)

async function greedy (checkpointPath: string, prompt: string, maxTokens: number): Promise<number[]> {
  const loaded = await loadModel({ checkpointPath, tokenizerPath: TOKENIZER })
  const run = await generate(await shardedModel(loaded), loaded.tokenizer, { prompt, maxTokens, sampler: createSampler({ temperature: 0, topP: 1, seed: 1n }) })
  return run.tokenIds
}

async function firstLogits (checkpointPath: string): Promise<Float32Array> {
  const m = await shardedModel(await loadModel({ checkpointPath, tokenizerPath: TOKENIZER }))
  return Float32Array.from(await forward(m, createRunState(m.config, m.shard, 1), 1, 0))
}

describe('checkpoint formats', () => {
  const variants: Array<[string, CheckpointVersion, boolean]> = [['v1, shared classifier', 1, true], ['v1, separate classifier', 1, false], ['v0, separate classifier', 0, false]]
  for (const [name, version, shared] of variants) {
    it(`stories260K rewritten as ${name} gives run.c's greedy tokens`, async () => {
      const src = await loadCheckpoint('models/stories260K/stories260K.bin')
      const tensors = tensorViews(src.bytes, 28, src.config, 0)
      const config: ModelConfig = { ...src.config, sharedClassifier: shared }
      const file = path.join(dir, `260K-${version}-${String(shared)}.bin`)
      // a separate classifier gets a copy of the embedding, so the logits are unchanged
      await writeCheckpoint(file, config, version, (t) => { const v = tensors.get(t.name === 'wcls' ? 'tokEmb' : t.name) as Float32Array; return (i) => v[i] })
      const back = await loadCheckpoint(file)
      expect(back.version).toBe(version)
      expect(back.config).toEqual(config)
      expect(await greedy(file, 'Once upon a time', 60)).toEqual(case64?.token_ids)
    })
  }

  it('synth writes the same weights for a seed in v0 and v1, and a different model for another seed', async () => {
    const shape = parseShape('dim=32,hidden=64,layers=2,heads=4,kv_heads=2,vocab=512,seq_len=64')
    const v0 = await writeSyntheticCheckpoint(path.join(dir, 's0.bin'), shape, 0, 7n)
    const v0again = await writeSyntheticCheckpoint(path.join(dir, 's0b.bin'), shape, 0, 7n)
    const v1 = await writeSyntheticCheckpoint(path.join(dir, 's1.bin'), shape, 1, 7n)
    const other = await writeSyntheticCheckpoint(path.join(dir, 's2.bin'), shape, 0, 8n)
    expect(v0again.sha256).toBe(v0.sha256)
    expect(other.sha256).not.toBe(v0.sha256)
    const loaded = await loadCheckpoint(v1.path)
    expect(loaded.config).toEqual(shape)
    expect(Array.from(loaded.weights.layers[1].rmsFfn)).toEqual(new Array(32).fill(1))
    const wq = loaded.weights.layers[0].wq
    const std = Math.sqrt(wq.reduce((s, v) => s + v * v, 0) / wq.length)
    expect(std).toBeGreaterThan(0.018)
    expect(std).toBeLessThan(0.022)
    const tiny = await loadModel({ checkpointPath: v0.path, tokenizerPath: TOKENIZER })
    const full = await generate(await shardedModel(tiny), tiny.tokenizer, { prompt: 'Hello', maxTokens: 500, sampler: createSampler({ temperature: 0, topP: 1, seed: 1n }) })
    expect(full.stopReason).toBe('context-full') // 64 positions, then the last sampled token
    expect(full.tokenIds).toHaveLength(65)
    const a = await firstLogits(v0.path)
    expect(await firstLogits(v1.path)).toEqual(a)
    expect(await firstLogits(other.path)).not.toEqual(a)
  })

  it('rejects malformed shapes with the syntax to use', () => {
    expect(() => parseShape('stories1B')).toThrow(/unknown shape "stories1B"; use one of stories260K/)
    expect(() => parseShape('dim=64,hidden=172')).toThrow(/missing layers, heads, kv_heads, vocab, seq_len/)
    expect(() => parseShape('dim=64,hidden=172,layers=5,heads=7,kv_heads=1,vocab=512,seq_len=512')).toThrow(/not divisible by n_heads 7/)
    expect(() => parseShape('dim=-1,hidden=172,layers=5,heads=8,kv_heads=4,vocab=512,seq_len=512')).toThrow(/bad shape entry/)
  })
})
