import { InferenceSettingError, PromptTooLongError } from '../errors.js'
import type { Sampler } from '../sampler.js'
import { textDecoder, type TextTokenizer } from '../text/tokenizer.js'
import { createLlmState, forwardBatch, type LlmModel } from './forward.js'

/** Prompt tokens go through the layers this many at a time (llama.cpp's micro-batch is 512). */
export const PREFILL_BATCH = 128

export interface LlmGenerateOptions {
  readonly promptIds: readonly number[] // already tokenized: a prompt, or a rendered chat
  readonly maxTokens: number // new tokens to sample, at least 1
  readonly sampler: Sampler
  /** KV cache positions; default prompt + maxTokens (never the model's whole context unless asked). */
  readonly ctx?: number
  /** Prompt tokens already in the step's KV cache (a kept job's shared prefix): feeding starts after them. */
  readonly cached?: number
  /** Sample past end-of-generation tokens (benchmarks: a fixed number of tokens). */
  readonly ignoreEog?: boolean
  /** Each sampled token with the text it completes (never half a UTF-8 character). */
  readonly onToken?: (id: number, text: string) => void
  readonly now?: () => number
}

export type LlmStopReason = 'eog' | 'max-tokens' | 'context-full'

export interface LlmGeneration {
  readonly promptTokenIds: readonly number[]
  readonly generatedIds: number[] // sampled tokens, without the end-of-generation token that stopped it
  readonly text: string // their decoded text
  readonly stopReason: LlmStopReason
  readonly positions: number // the KV cache it ran with
  readonly prefillMs: number
  readonly firstTokenMs: number // from the start to the first sampled token
  readonly totalMs: number
  /** Sampled tokens per second after the first; null if there was only one. */
  readonly tokensPerSecond: number | null
  readonly promptTokensPerSecond: number
}

const yieldToEventLoop = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

/** Feed tokens at positions pos0.. (in order, following on), get the logits (vocab,) of the last. */
export type LlmStep = (tokens: readonly number[], pos0: number) => Promise<Float32Array>

/** Generate on one device: the prompt in batches of PREFILL_BATCH, then one token at a time. */
export async function generateLlm (m: LlmModel, tok: TextTokenizer, opts: LlmGenerateOptions): Promise<LlmGeneration> {
  return await generateLlmWith(m.config.contextLength, tok, (positions, promptLength) => {
    const s = createLlmState(m, positions, Math.min(PREFILL_BATCH, promptLength))
    return async (tokens, pos0) => {
      let logits: Float32Array = new Float32Array(0)
      for (let at = 0; at < tokens.length; at += s.batch) {
        const chunk = tokens.slice(at, at + s.batch)
        logits = await forwardBatch(m, s, chunk, pos0 + at, chunk.length - 1)
      }
      return logits
    }
  }, opts)
}

/**
 * Generate with any step (this device's forward pass, or a job across the ring, opened for a KV
 * cache of `positions`): the prompt in one step, then one token at a time until an
 * end-of-generation token, maxTokens, or the KV cache is full.
 */
export async function generateLlmWith (contextLength: number, tok: TextTokenizer, open: (positions: number, promptLength: number) => LlmStep | Promise<LlmStep>, opts: LlmGenerateOptions): Promise<LlmGeneration> {
  const now = opts.now ?? (() => performance.now())
  const start = now()
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1) throw new InferenceSettingError(`--max-tokens is ${opts.maxTokens}; it must be a whole number of at least 1`)
  const prompt = opts.promptIds
  if (prompt.length === 0) throw new InferenceSettingError('the prompt is empty and the model adds no BOS token; give a prompt')
  const limit = contextLength
  const positions = opts.ctx ?? Math.min(limit, prompt.length + opts.maxTokens)
  if (!Number.isInteger(positions) || positions < 1 || positions > limit) throw new InferenceSettingError(`--ctx is ${positions}; it must be a whole number from 1 to the model's context of ${limit}`)
  if (prompt.length > positions) throw new PromptTooLongError(`the prompt is ${prompt.length} tokens, more than the context of ${positions}${opts.ctx === undefined ? ' the model allows' : ' (--ctx)'}; shorten it`)

  const cached = opts.cached ?? 0
  if (!Number.isInteger(cached) || cached < 0 || cached >= prompt.length) throw new RangeError(`${cached} cached positions of a ${prompt.length}-token prompt: at least its last token must be fed`)
  const step = await open(positions, prompt.length)
  let logits = await step(prompt.slice(cached), cached)
  const prefillEnd = now()

  const decoder = textDecoder(tok)
  const generated: number[] = []
  let text = ''
  let stopReason: LlmStopReason = 'max-tokens'
  let firstTokenAt: number | null = null
  for (let pos = prompt.length; ; pos++) {
    const next = opts.sampler.sample(logits)
    if (firstTokenAt === null) firstTokenAt = now()
    if (tok.eog.has(next) && opts.ignoreEog !== true) { stopReason = 'eog'; break }
    generated.push(next)
    const piece = decoder.push(next)
    text += piece
    if (opts.onToken !== undefined) {
      opts.onToken(next, piece)
      await yieldToEventLoop() // lets a piped stdout flush the token now, not at the end
    }
    if (generated.length >= opts.maxTokens) break
    if (pos >= positions) { stopReason = 'context-full'; break }
    logits = await step([next], pos)
  }
  const tail = decoder.flush()
  if (tail !== '') { text += tail; opts.onToken?.(generated[generated.length - 1], tail) }
  const end = now()
  const afterFirst = generated.length - 1
  return {
    promptTokenIds: prompt,
    generatedIds: generated,
    text,
    stopReason,
    positions,
    prefillMs: prefillEnd - start,
    firstTokenMs: (firstTokenAt ?? end) - start,
    totalMs: end - start,
    tokensPerSecond: afterFirst > 0 && firstTokenAt !== null && end > firstTokenAt ? afterFirst / ((end - firstTokenAt) / 1000) : null,
    promptTokensPerSecond: prompt.length / Math.max(1e-9, (prefillEnd - start) / 1000)
  }
}
