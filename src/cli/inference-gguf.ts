import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { UsageError } from '../errors.js'
import { InferenceSettingError } from '../inference/errors.js'
import { defaultLlmEngine, type LlmEngineName } from '../inference/llm/engine.js'
import type { ChatMessage } from '../inference/text/chat-template.js'
import type { CliIO } from '../process/io.js'
import { byteProgress } from './progress.js'

/** What `mesh inference --local` passes for a GGUF model, already range-checked where it can be. */
export interface GgufRunArgs {
  readonly model: string
  readonly prompt: string
  readonly chat?: string
  readonly system?: string
  readonly messages?: string
  readonly maxTokens: number
  readonly ctx?: number
  readonly sampler: { temperature: number, topP: number, topK: number, minP: number, seed: bigint }
  readonly engine: string | undefined
  readonly threads: number
  readonly ignoreEog: boolean
  readonly json: boolean
}

const messagesSchema = z.array(z.object({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string()
})).min(1)

/** --chat/--system or --messages FILE as one conversation; null for a plain --prompt. */
export async function conversation (a: Pick<GgufRunArgs, 'chat' | 'system' | 'messages'>): Promise<ChatMessage[] | null> {
  if (a.messages !== undefined) {
    if (a.chat !== undefined || a.system !== undefined) throw new UsageError('give either --messages FILE or --chat/--system, not both')
    const text = await readFile(a.messages, 'utf8').catch((err: NodeJS.ErrnoException) => { throw new UsageError(`cannot read --messages ${a.messages}: ${err.code ?? err.message}`) })
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { throw new UsageError(`--messages ${a.messages} is not JSON; it must be an array of {"role": "system"|"user"|"assistant", "content": "..."}`) }
    const result = messagesSchema.safeParse(parsed)
    if (!result.success) throw new UsageError(`--messages ${a.messages}: ${result.error.issues[0]?.path.join('.') ?? ''} ${result.error.issues[0]?.message ?? 'invalid'}; it must be a non-empty array of {"role": "system"|"user"|"assistant", "content": "..."}`)
    return result.data
  }
  if (a.chat === undefined) {
    if (a.system !== undefined) throw new UsageError('--system needs --chat (the user\'s message)')
    return null
  }
  return [...(a.system !== undefined ? [{ role: 'system' as const, content: a.system }] : []), { role: 'user' as const, content: a.chat }]
}

/** `mesh inference --local` on a GGUF file: tokenizer and chat template from the file, weights kept quantized. */
export async function runGgufLocal (a: GgufRunArgs, io: CliIO): Promise<void> {
  const messages = await conversation(a)
  const [{ loadGguf, llmModel, llmThreads }, { generateLlm }, { createSampler }, { chatTemplateFrom, renderChat }] = await Promise.all([
    import('../inference/llm/load.js'), import('../inference/llm/generate.js'), import('../inference/sampler.js'),
    import('../inference/text/chat-template.js')
  ])
  const sampler = createSampler(a.sampler)
  const engine = ggufEngine(a.engine, io)
  const progress = byteProgress(io, 'loading model')
  const g = await loadGguf(a.model, progress.onProgress, engine).finally(progress.done)
  const threads = llmThreads(engine, g.config, a.threads)
  const model = llmModel(g, engine, threads)

  let rendered: string | null = null
  let promptIds: number[]
  if (messages !== null) {
    const template = chatTemplateFrom(g.file.metadata, g.tokenizer, a.model)
    rendered = renderChat(template, messages, { addGenerationPrompt: true })
    promptIds = g.tokenizer.encode(rendered, { addSpecial: true, parseSpecial: true })
  } else {
    promptIds = g.tokenizer.encode(a.prompt, { addSpecial: true, parseSpecial: true })
  }

  const stream = !a.json && io.write !== undefined
  if (stream && messages === null) io.write?.(Buffer.from(a.prompt))
  const result = await generateLlm(model, g.tokenizer, {
    promptIds,
    maxTokens: a.maxTokens,
    ctx: a.ctx,
    ignoreEog: a.ignoreEog,
    sampler,
    onToken: stream ? (_id, text) => { io.write?.(Buffer.from(text)) } : undefined
  })
  const peakRssBytes = process.resourceUsage().maxRSS * 1024
  if (a.json) {
    io.out(JSON.stringify({
      text: messages === null ? a.prompt + result.text : result.text, // as for llama2.c checkpoints: a continuation includes its prompt
      ...(rendered !== null ? { rendered_prompt: rendered } : {}),
      prompt_token_ids: result.promptTokenIds,
      reply_token_ids: result.generatedIds,
      token_ids: [...result.promptTokenIds, ...result.generatedIds],
      generated_tokens: result.generatedIds.length,
      stop_reason: result.stopReason,
      ctx: result.positions,
      tokens_per_second: result.tokensPerSecond,
      prompt_tokens_per_second: result.promptTokensPerSecond,
      time_to_first_token_ms: result.firstTokenMs,
      total_ms: result.totalMs,
      load_ms: g.loadMs,
      peak_rss_bytes: peakRssBytes,
      engine: model.linear.name,
      threads,
      model: { path: a.model, name: g.config.name, architecture: g.config.arch, sha256: g.sha256 }
    }))
    return
  }
  if (stream) io.write?.(Buffer.from('\n'))
  else io.out(messages === null ? a.prompt + result.text : result.text)
  const tps = result.tokensPerSecond === null ? 'n/a' : result.tokensPerSecond.toFixed(1)
  io.err(`achieved tok/s: ${tps}, time to first token: ${result.firstTokenMs.toFixed(1)} ms (prompt ${result.promptTokenIds.length} tokens at ${result.promptTokensPerSecond.toFixed(0)} tok/s), ` +
    `load: ${g.loadMs.toFixed(0)} ms, ${result.generatedIds.length} tokens (${result.stopReason}), engine ${model.linear.name}, ${threads} thread${threads === 1 ? '' : 's'}, peak RSS ${(peakRssBytes / (1 << 20)).toFixed(0)} MiB`)
}

/**
 * GGUF weights run on the native kernels, the WebAssembly ones (where no C compiler built the
 * native ones), or the TypeScript reference (slow, for tests).
 */
export function ggufEngine (asked: string | undefined, io: CliIO): LlmEngineName {
  if (asked === undefined || asked === 'auto') {
    const engine = defaultLlmEngine()
    if (engine === 'native') return engine
    io.err('mesh: the native kernels are not built (no C compiler at install); running GGUF weights on the WebAssembly kernels')
    return engine
  }
  if (asked === 'native' || asked === 'wasm' || asked === 'ts') return asked
  throw new InferenceSettingError(`--engine ${asked} does not run GGUF models yet; use native (C kernels), wasm (WebAssembly SIMD) or ts (the reference)`)
}
