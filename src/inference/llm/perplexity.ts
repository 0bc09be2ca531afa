import { InferenceSettingError } from '../errors.js'
import { forward, type ShardedModel } from '../forward.js'
import { createRunState } from '../state.js'
import { createLlmState, forwardBatch, type LlmModel } from './forward.js'
import { PREFILL_BATCH } from './generate.js'

/** What perplexity needs of a model: the logits of positions `from`.. of a chunk fed from position 0. */
export interface ChunkScorer {
  readonly vocabSize: number
  readonly contextLength: number
  /** Rows of vocabSize logits, for positions from..tokens.length-1. */
  logits: (tokens: readonly number[], from: number) => Promise<Float32Array>
}

export interface PerplexityResult {
  readonly ppl: number
  readonly chunks: number
  readonly ctx: number
  readonly scored: number // predictions counted
  readonly tokens: number // of the whole text
  readonly chunkPpl: number[] // running perplexity after each chunk, as llama-perplexity prints it
}

/**
 * Perplexity as llama.cpp's llama-perplexity computes it: the text's tokens cut into chunks of
 * `ctx` (a partial last chunk dropped), each chunk's first token replaced by BOS when the
 * vocabulary adds one, and only the second half scored: the logits at ctx/2 .. ctx-2 predict the
 * tokens after them. PPL = exp(mean negative log-likelihood).
 */
export async function perplexity (model: ChunkScorer, tokens: readonly number[], ctx: number, bos: number | null,
  onChunk?: (done: number, total: number) => void): Promise<PerplexityResult> {
  if (!Number.isInteger(ctx) || ctx < 4) throw new InferenceSettingError(`--ctx is ${ctx}; it must be a whole number of at least 4`)
  if (ctx > model.contextLength) throw new InferenceSettingError(`--ctx is ${ctx}, more than the model's context of ${model.contextLength}`)
  const chunks = Math.floor(tokens.length / ctx)
  if (chunks < 1) throw new InferenceSettingError(`the text is ${tokens.length} tokens, shorter than one chunk of --ctx ${ctx}; give a longer text or a smaller --ctx`)
  const first = Math.floor(ctx / 2)
  const vocab = model.vocabSize
  let nll = 0
  let scored = 0
  const chunkPpl: number[] = []
  for (let c = 0; c < chunks; c++) {
    const chunk = tokens.slice(c * ctx, (c + 1) * ctx)
    if (bos !== null) chunk[0] = bos
    const logits = await model.logits(chunk, first)
    for (let j = first; j < ctx - 1; j++) {
      const row = logits.subarray((j - first) * vocab, (j - first + 1) * vocab)
      nll -= logSoftmaxAt(row, chunk[j + 1])
      scored++
    }
    chunkPpl.push(Math.exp(nll / scored))
    onChunk?.(c + 1, chunks)
  }
  return { ppl: Math.exp(nll / scored), chunks, ctx, scored, tokens: tokens.length, chunkPpl }
}

/** log softmax(row)[id], in double precision. */
function logSoftmaxAt (row: Float32Array, id: number): number {
  let max = -Infinity
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i]
  let sum = 0
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max)
  return row[id] - max - Math.log(sum)
}

/** A GGUF model as a chunk scorer: each chunk goes through in batches, from position 0. */
export function llmScorer (m: LlmModel, ctx: number): ChunkScorer {
  const vocab = m.config.vocabSize
  const s = createLlmState(m, ctx, Math.min(PREFILL_BATCH, ctx), Math.min(PREFILL_BATCH, ctx))
  return {
    vocabSize: vocab,
    contextLength: m.config.contextLength,
    logits: async (tokens, from) => {
      const out = new Float32Array((tokens.length - from) * vocab)
      for (let at = 0; at < tokens.length; at += s.batch) {
        const chunk = tokens.slice(at, at + s.batch)
        const wanted = Math.max(0, from - at)
        const rows = await forwardBatch(m, s, chunk, at, Math.min(wanted, chunk.length))
        if (rows.length > 0) out.set(rows, (at + wanted - from) * vocab)
      }
      return out
    }
  }
}

/** A llama2.c checkpoint as a chunk scorer: run.c's forward pass, one position at a time. */
export function llama2cScorer (m: ShardedModel, ctx: number): ChunkScorer {
  const vocab = m.config.vocabSize
  const state = createRunState(m.config, m.shard, ctx)
  return {
    vocabSize: vocab,
    contextLength: m.config.seqLen,
    logits: async (tokens, from) => {
      const out = new Float32Array((tokens.length - from) * vocab)
      for (let pos = 0; pos < tokens.length; pos++) {
        const logits = await forward(m, state, tokens[pos], pos)
        if (pos >= from) out.set(logits, (pos - from) * vocab)
      }
      return out
    }
  }
}
