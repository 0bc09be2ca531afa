import { createLlmState, embedRows, forwardRows, logitsOf, type LlmModel } from '../llm/forward.js'
import { PREFILL_BATCH } from '../llm/generate.js'
import type { JobModel } from './session.js'

/** A GGUF shard as a job runs it: a prompt's chunk of positions through every layer at once. */
export function llmJobModel (m: LlmModel): JobModel {
  const { dim, nLayers } = m.config
  return {
    dim,
    nLayers,
    maxBatch: PREFILL_BATCH,
    classifier: 'split',
    partialBytes: 8,
    open: (positions, batch) => {
      const s = createLlmState(m, positions, batch)
      let fed = 0 // rows of the latest step, whose last the logits are of
      return {
        embed: (tokens) => {
          const rows = new Float32Array(tokens.length * dim)
          embedRows(m, tokens, rows)
          return rows
        },
        layers: async (x, pos0, n, reduce) => {
          s.x.set(x.subarray(0, n * dim))
          await forwardRows(m, s, n, pos0, reduce)
          fed = n
        },
        logits: async () => logitsOf(m, s, fed, fed - 1)
      }
    }
  }
}
