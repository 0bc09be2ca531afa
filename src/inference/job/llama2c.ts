import { embedding, forwardEmbedded, type ShardedModel } from '../forward.js'
import { createRunState } from '../state.js'
import type { JobModel } from './session.js'

export interface Llama2cJobModel extends JobModel {
  readonly sharded: ShardedModel
}

/** A llama2.c shard as a job runs it: position by position (its forward pass takes one token). */
export function llama2cJobModel (m: ShardedModel): Llama2cJobModel {
  const { dim, nLayers } = m.config
  return {
    sharded: m,
    dim,
    nLayers,
    maxBatch: 1,
    classifier: 'leader',
    partialBytes: 4,
    open: (positions) => {
      const s = createRunState(m.config, m.shard, positions)
      return {
        embed: (tokens) => {
          const rows = new Float32Array(tokens.length * dim)
          tokens.forEach((t, i) => { rows.set(embedding(m, t), i * dim) })
          return rows
        },
        layers: async (x, pos0, n, reduce) => {
          for (let i = 0; i < n; i++) {
            s.x.set(x.subarray(i * dim, (i + 1) * dim))
            await forwardEmbedded(m, s, pos0 + i, reduce)
          }
        },
        logits: async () => {
          await m.matmuls.classifier(s.x, s.logits)
          return s.logits
        }
      }
    }
  }
}
