import type { ModelConfig } from './config.js'
import { InferenceSettingError, PromptTooLongError } from './errors.js'
import { forward, type ShardedModel } from './forward.js'
import { localAllReduce, type AllReduce } from './reduce.js'
import type { Sampler } from './sampler.js'
import { createRunState } from './state.js'
import { BOS, encode, EOS, printedPiece, type Tokenizer } from './tokenizer.js'

export interface GenerateOptions {
  readonly prompt: string // may be empty: generation starts from BOS
  readonly maxTokens: number // new tokens to sample, at least 1
  readonly sampler: Sampler
  /** Each token as it is decided (prompt tokens first), with the bytes run.c would print for it. */
  readonly onToken?: (id: number, printed: Uint8Array) => void
  readonly allReduce?: AllReduce // for the local forward pass (generate)
  readonly now?: () => number // ms clock; performance.now by default
}

/** One position: feed `token` at `pos`, get the logits (vocab,). */
export type Step = (token: number, pos: number) => Promise<Float32Array>

export type StopReason = 'bos' | 'eos' | 'max-tokens' | 'context-full'

export interface Generation {
  readonly promptTokenIds: number[] // BOS and the encoded prompt
  readonly tokenIds: number[] // the whole sequence: prompt tokens, then the generated ones
  readonly generated: number // sampled tokens
  readonly printed: Uint8Array // what run.c prints (the prompt included), without its final newline
  readonly stopReason: StopReason
  readonly firstTokenMs: number // from the start to the first sampled token
  readonly totalMs: number
  /** Forward positions per second after the first sampled token (run.c's "achieved tok/s"); null if there was none. */
  readonly tokensPerSecond: number | null
}

/** How a position runs, given the KV positions the generation needs. */
export type Stepper = (positions: number) => Promise<Step>

/** run.c `generate` on this device's forward pass (with `opts.allReduce`). */
export async function generate (m: ShardedModel, tok: Tokenizer, opts: GenerateOptions): Promise<Generation> {
  return await generateWith(m.config, tok, async (positions) => localStep(m, positions, opts.allReduce ?? localAllReduce), opts)
}

/**
 * run.c `generate`: feed the prompt, then sample until BOS/EOS, maxTokens or a full context.
 * Each position runs on `stepper`'s step: a distributed job's leader passes its own, and needs
 * no weights here (the members hold them).
 */
export async function generateWith (config: ModelConfig, tok: Tokenizer, stepper: Stepper, opts: GenerateOptions): Promise<Generation> {
  const now = opts.now ?? (() => performance.now())
  const start = now()
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1) throw new InferenceSettingError(`--max-tokens is ${opts.maxTokens}; it must be a whole number of at least 1`)
  const prompt = encode(tok, opts.prompt)
  const seqLen = config.seqLen
  if (prompt.length > seqLen) throw new PromptTooLongError(`the prompt is ${prompt.length} tokens with BOS, longer than the model's context of ${seqLen}; shorten it`)

  // the last sampled token is printed but never fed, so it needs no position
  const positions = Math.min(seqLen, prompt.length - 1 + opts.maxTokens)
  const step = await stepper(positions)
  const tokens = [prompt[0]]
  const printed: Uint8Array[] = []
  let stopReason: StopReason = positions < prompt.length - 1 + opts.maxTokens ? 'context-full' : 'max-tokens'
  let firstTokenAt: number | null = null
  let token = prompt[0]
  let pos = 0
  while (pos < positions) {
    const logits = await step(token, pos)
    const sampled = pos >= prompt.length - 1
    const next = sampled ? opts.sampler.sample(logits) : prompt[pos + 1]
    pos++
    if (sampled && (next === BOS || next === EOS)) {
      stopReason = next === BOS ? 'bos' : 'eos'
      break
    }
    const piece = printedPiece(tok, token, next)
    printed.push(piece)
    tokens.push(next)
    opts.onToken?.(next, piece)
    token = next
    if (sampled && firstTokenAt === null) firstTokenAt = now()
  }
  const end = now()
  const generated = tokens.length - prompt.length
  const afterFirst = firstTokenAt === null ? 0 : pos - prompt.length
  return {
    promptTokenIds: prompt,
    tokenIds: tokens,
    generated,
    printed: Buffer.concat(printed),
    stopReason,
    firstTokenMs: (firstTokenAt ?? end) - start,
    totalMs: end - start,
    tokensPerSecond: afterFirst > 0 && firstTokenAt !== null ? afterFirst / ((end - firstTokenAt) / 1000) : null
  }
}

function localStep (m: ShardedModel, positions: number, allReduce: AllReduce): Step {
  const state = createRunState(m.config, m.shard, positions)
  return async (token, pos) => await forward(m, state, token, pos, allReduce)
}
