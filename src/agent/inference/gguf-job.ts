import type { LeaderRun, MemberStats } from '../../inference/job/leader.js'
import { generateLlmWith, type LlmStep } from '../../inference/llm/generate.js'
import type { LlmShard } from '../../inference/llm/shard-plan.js'
import { createSampler } from '../../inference/sampler.js'
import type { ServedGguf } from '../../inference/served.js'
import { chatTemplateFrom, renderChat } from '../../inference/text/chat-template.js'
import { jobRecord, type InferenceEvent, type InferenceRequest, type JobResult } from './events.js'
import type { ModelHost } from './models.js'

/** Positions a kept job's KV cache holds beyond its first request: room for the next turns of a chat. */
export const KEEP_HEADROOM = 1024

/** Where a GGUF job's LeaderRun comes from and goes to: a kept one (jobs.ts) or a new one. */
export interface GgufRuns {
  /** a kept job holding a prefix of these prompt tokens, rewound to it (with how many it holds), or none */
  reuse: (promptIds: readonly number[], maxTokens: number) => Promise<{ run: LeaderRun<LlmShard>, cached: number } | undefined>
  /** a new job for a KV cache of `positions` */
  open: (positions: number) => LeaderRun<LlmShard>
  /** this request's steps on `run` (its cancellation) */
  steps: (run: LeaderRun<LlmShard>) => LlmStep
  /** the request is over: end the job (its members' shares), or keep it for the next request (none then) */
  done: (run: LeaderRun<LlmShard>, ok: boolean) => Promise<MemberStats[]>
}

/**
 * A job on a GGUF model across the ring, led by this agent: the prompt (or the chat, rendered with
 * the model's own template) is parsed for special tokens, goes through the ring in chunks, and
 * generation stops at the model's end-of-generation tokens, as `mesh inference --local` does.
 * With `keepCache`, a kept job that holds a prefix of the prompt feeds only the rest.
 */
export async function leadGgufJob (
  host: ModelHost, served: ServedGguf, req: InferenceRequest, ids: { jobId: string, poolId: string },
  emit: (e: InferenceEvent) => void, runs: GgufRuns
): Promise<JobResult> {
  const { file, tokenizer } = await host.ggufText()
  const chat = req.messages !== undefined
  const text = req.messages === undefined ? req.prompt : renderChat(chatTemplateFrom(file.metadata, tokenizer, served.checkpointPath), req.messages, { addGenerationPrompt: true })
  const promptIds = tokenizer.encode(text, { addSpecial: true, parseSpecial: true })
  const sampler = createSampler({ temperature: req.temperature, topP: req.topP, seed: BigInt(req.seed) })
  emit({ type: 'started', ...ids })
  emit({ type: 'prompt', tokens: promptIds.length })
  // a continuation prints its prompt first, as a llama2.c model's does; a chat prints only the reply
  if (!chat) emit({ type: 'token', id: promptIds[promptIds.length - 1] ?? 0, piece: Buffer.from(req.prompt).toString('base64'), echo: true })
  const kept = req.keepCache === true ? await runs.reuse(promptIds, req.maxTokens) : undefined
  let run = kept?.run
  const failoversBefore = run?.failovers ?? 0
  const contextLength = served.config.contextLength
  try {
    const r = await generateLlmWith(contextLength, tokenizer, (positions) => {
      run ??= runs.open(positions)
      return runs.steps(run)
    }, {
      promptIds,
      maxTokens: req.maxTokens,
      sampler,
      // a kept job runs on in the cache it has; a job to keep gets room for the next turns
      ctx: kept?.run.capacity ?? (req.keepCache === true ? Math.min(contextLength, promptIds.length + req.maxTokens + KEEP_HEADROOM) : undefined),
      cached: kept?.cached,
      onToken: (id, piece) => { emit({ type: 'token', id, piece: Buffer.from(piece).toString('base64') }) }
    })
    const members = await runs.done(run!, true)
    return {
      ...jobRecord(ids, served.identity.id, { failovers: run!.failovers - failoversBefore }, members),
      kind: chat ? 'chat' : 'prompt',
      text: chat ? r.text : req.prompt + r.text,
      token_ids: [...r.promptTokenIds, ...r.generatedIds],
      prompt_token_ids: [...r.promptTokenIds],
      cached_tokens: kept?.cached ?? 0,
      generated_tokens: r.generatedIds.length,
      stop_reason: r.stopReason,
      tokens_per_second: r.tokensPerSecond,
      time_to_first_token_ms: r.firstTokenMs,
      total_ms: r.totalMs
    }
  } catch (err) {
    if (run !== undefined) await runs.done(run, false)
    throw err
  }
}
