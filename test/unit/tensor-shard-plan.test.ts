import { describe, expect, it } from 'vitest'
import type { ModelConfig } from '../../src/inference/config.js'
import { RING_COLUMNS, shardForColumns } from '../../src/inference/shard.js'

const stories260K: ModelConfig = { dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true }
const stories110M: ModelConfig = { dim: 768, hiddenDim: 2048, nLayers: 12, nHeads: 12, nKvHeads: 12, vocabSize: 32000, seqLen: 1024, sharedClassifier: true }

/** [kv heads, hidden units] each member gets for ring boundaries [0, …, 8192]. */
const plan = (c: ModelConfig, bounds: number[]): Array<[number, number]> => bounds.slice(1).map((end, i) => {
  const s = shardForColumns(c, bounds[i], end)
  return [s.kvHeadEnd - s.kvHeadStart, s.hiddenEnd - s.hiddenStart]
})

describe('shardForColumns: a member\'s ring columns → its kv-head groups and FFN units', () => {
  it.each([
    ['one member', stories260K, [0, 8192], [[4, 172]]],
    ['two halves', stories260K, [0, 4096, 8192], [[2, 86], [2, 86]]],
    ['uneven thirds', stories260K, [0, 2731, 5461, 8192], [[1, 57], [2, 58], [1, 57]]],
    ['a sliver gets nothing', stories260K, [0, 1, 8192], [[0, 0], [4, 172]]],
    ['more members than kv heads', stories260K, [0, 1638, 3277, 4915, 6554, 8192], [[1, 34], [1, 35], [0, 34], [1, 35], [1, 34]]],
    ['stories110M shape in three', stories110M, [0, 2731, 5461, 8192], [[4, 683], [4, 682], [4, 683]]]
  ] as const)('%s', (_name, c, bounds, expected) => {
    expect(plan(c, [...bounds])).toEqual(expected)
  })

  it.each([[stories260K], [stories110M]])('gives every unit to exactly one member for any boundaries', (c) => {
    let x = 12345
    for (let trial = 0; trial < 200; trial++) {
      const cuts = Array.from({ length: 1 + (trial % 6) }, () => { x = (x * 1103515245 + 12345) % 2 ** 31; return x % (RING_COLUMNS + 1) })
      const bounds = [0, ...cuts.sort((a, b) => a - b), RING_COLUMNS]
      const shards = bounds.slice(1).map((end, i) => shardForColumns(c, bounds[i], end))
      expect(shards[0].kvHeadStart).toBe(0)
      expect(shards[0].hiddenStart).toBe(0)
      for (let i = 1; i < shards.length; i++) {
        expect(shards[i].kvHeadStart).toBe(shards[i - 1].kvHeadEnd)
        expect(shards[i].hiddenStart).toBe(shards[i - 1].hiddenEnd)
      }
      for (const s of shards) expect(s.kvHeadEnd >= s.kvHeadStart && s.hiddenEnd >= s.hiddenStart).toBe(true)
      expect(shards[shards.length - 1].kvHeadEnd).toBe(c.nKvHeads)
      expect(shards[shards.length - 1].hiddenEnd).toBe(c.hiddenDim)
    }
  })
})
