import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { Weights } from '../../src/inference/checkpoint.js'
import { parameterCount, type CheckpointVersion } from '../../src/inference/config.js'
import { ShardRangeError } from '../../src/inference/errors.js'
import { embedding, forward, forwardEmbedded, forwardLayers } from '../../src/inference/forward.js'
import { loadModel, loadShardModel, shardedModel } from '../../src/inference/model.js'
import { shardForColumns, wholeModel } from '../../src/inference/shard.js'
import { createRunState } from '../../src/inference/state.js'
import { parseShape, writeSyntheticCheckpoint } from '../../src/inference/synth.js'

const TOKENIZER = 'models/stories260K/tok512.bin'
const dir = mkdtempSync(path.join(tmpdir(), 'mesh-shard-load-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const flat = (w: Weights): number[][] => [
  Array.from(w.tokEmb ?? []), Array.from(w.rmsFinal), Array.from(w.wcls ?? []),
  ...w.layers.flatMap((lw) => [lw.rmsAtt, lw.wq, lw.wk, lw.wv, lw.wo, lw.rmsFfn, lw.w1, lw.w2, lw.w3].map((t) => Array.from(t)))
]

describe('loading one shard from the checkpoint file', () => {
  // odd sizes, grouped-query attention and a separate classifier: every cut has a remainder
  const shape = parseShape('dim=48,hidden=100,layers=3,heads=6,kv_heads=3,vocab=512,seq_len=32', false)
  const files = new Map<CheckpointVersion, string>()
  const file = async (version: CheckpointVersion): Promise<string> => {
    const known = files.get(version)
    if (known !== undefined) return known
    const p = path.join(dir, `v${version}.bin`)
    await writeSyntheticCheckpoint(p, shape, version, 11n)
    files.set(version, p)
    return p
  }

  it.each([0, 1] as const)('reads the same slices from a v%i file as slicing the loaded whole model', async (version) => {
    const checkpointPath = await file(version)
    const whole = await loadModel({ checkpointPath, tokenizerPath: TOKENIZER })
    for (const [start, end] of [[0, 3000], [3000, 8192], [100, 200]]) {
      const shard = shardForColumns(shape, start, end)
      const fromFile = await loadShardModel({ checkpointPath, tokenizerPath: TOKENIZER, shard, engine: { name: 'ts', threads: 1 }, withClassifier: true })
      const fromMemory = await shardedModel(whole, { name: 'ts', threads: 1 }, shard)
      expect(flat(fromFile.model.weights)).toEqual(flat(fromMemory.weights))
      expect(fromFile.identity).toEqual(whole.identity)
    }
  })

  it('holds only its share of the layers, and the embedding and the classifier only when asked', async () => {
    const checkpointPath = await file(1)
    const load = async (start: number, end: number, withClassifier: boolean, withEmbedding = true): Promise<number> =>
      (await loadShardModel({ checkpointPath, tokenizerPath: TOKENIZER, shard: (c) => shardForColumns(c, start, end), engine: { name: 'ts', threads: 1 }, withClassifier, withEmbedding })).weightBytes
    const embedding = 4 * shape.vocabSize * shape.dim
    const norms = 4 * (2 * shape.nLayers + 1) * shape.dim
    const layers = 4 * parameterCount(shape) - 2 * embedding - norms
    expect(await load(0, 8192, true)).toBe(4 * parameterCount(shape))
    expect(await load(0, 8192, false)).toBe(embedding + norms + layers)
    const halves = [await load(0, 4096, false), await load(4096, 8192, false)]
    expect(halves.map((b) => b - embedding - norms).reduce((a, b) => a + b)).toBe(layers)
    expect(Math.max(...halves)).toBeLessThan(embedding + norms + 0.6 * layers)
    // a job's member: the leader sends it each position's embedding row
    const members = [await load(0, 4096, false, false), await load(4096, 8192, false, false)]
    expect(members).toEqual(halves.map((b) => b - embedding))
  })

  it('a member without the embedding and the classifier runs the layers from a given row but cannot embed or give logits', async () => {
    const checkpointPath = await file(0)
    const { model } = await loadShardModel({ checkpointPath, tokenizerPath: TOKENIZER, shard: wholeModel, engine: { name: 'ts', threads: 1 }, withClassifier: false, withEmbedding: false })
    const whole = await shardedModel(await loadModel({ checkpointPath, tokenizerPath: TOKENIZER }))
    const [a, b] = [createRunState(shape, model.shard, 2), createRunState(shape, whole.shard, 2)]
    a.x.set(embedding(whole, 5))
    await forwardEmbedded(model, a, 0)
    await forward(whole, b, 5, 0)
    expect(Array.from(a.x)).toEqual(Array.from(b.x))
    expect(() => embedding(model, 5)).toThrow(/loaded without the token embedding/)
    await expect(forwardLayers(model, a, 5, 1)).rejects.toThrow(/loaded without the token embedding/)
    const withEmbedding = (await loadShardModel({ checkpointPath, tokenizerPath: TOKENIZER, shard: wholeModel, engine: { name: 'ts', threads: 1 }, withClassifier: false })).model
    await expect(forward(withEmbedding, createRunState(shape, withEmbedding.shard, 2), 5, 0)).rejects.toThrow(/loaded without the classifier/)
  })

  it('reports progress up to the bytes it holds, and refuses a shard that does not fit the model', async () => {
    const checkpointPath = await file(1)
    const seen: Array<[number, number]> = []
    const { weightBytes } = await loadShardModel({ checkpointPath, tokenizerPath: TOKENIZER, shard: (c) => shardForColumns(c, 0, 4096), engine: { name: 'ts', threads: 1 }, withClassifier: false, onProgress: (n, total) => { seen.push([n, total]) } })
    expect(seen.at(-1)).toEqual([weightBytes, weightBytes])
    expect(seen.map(([n]) => n)).toEqual(seen.map(([n]) => n).sort((x, y) => x - y))
    const bad = { kvHeadStart: 0, kvHeadEnd: 4, hiddenStart: 0, hiddenEnd: 10 }
    await expect(loadShardModel({ checkpointPath, tokenizerPath: TOKENIZER, shard: bad, engine: { name: 'ts', threads: 1 }, withClassifier: false })).rejects.toBeInstanceOf(ShardRangeError)
  })
})
