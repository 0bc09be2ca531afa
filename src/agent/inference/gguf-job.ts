import type { LeaderRun } from '../../inference/job/leader.js'
import { generateLlmWith } from '../../inference/llm/generate.js'
import type { LlmShard } from '../../inference/llm/shard-plan.js'
import { createSampler } from '../../inference/sampler.js'
import type { ServedGguf } from '../../inference/served.js'
import { chatTemplateFrom, renderChat } from '../../inference/text/chat-template.js'
import { jobRecord, type InferenceEvent, type InferenceRequest, type JobResult } from './events.js'
import type { ModelHost } from './models.js'

/**
 * A job on a GGUF model across the ring, led by this agent: the prompt (or the chat, rendered with
 * the model's own template) is parsed for special tokens, goes through the ring in chunks, and
 * generation stops at the model's end-of-generation tokens, as `mesh inference --local` does.
 */
export async function leadGgufJob (
  host: ModelHost, served: ServedGguf, req: InferenceRequest, ids: { jobId: string, poolId: string },
  emit: (e: InferenceEvent) => void, newRun: (positions: number) => LeaderRun<LlmShard>
): Promise<JobResult> {
  const { file, tokenizer } = await host.ggufText()
  const chat = req.messages !== undefined
  const text = req.messages === undefined ? req.prompt : renderChat(chatTemplateFrom(file.metadata, tokenizer, served.checkpointPath), req.messages, { addGenerationPrompt: true })
  const promptIds = tokenizer.encode(text, { addSpecial: true, parseSpecial: true })
  const sampler = createSampler({ temperature: req.temperature, topP: req.topP, seed: BigInt(req.seed) })
  emit({ type: 'started', ...ids })
  // a continuation prints its prompt first, as a llama2.c model's does; a chat prints only the reply
  if (!chat) emit({ type: 'token', id: promptIds[promptIds.length - 1] ?? 0, piece: Buffer.from(req.prompt).toString('base64') })
  let run: LeaderRun<LlmShard> | undefined
  try {
    const r = await generateLlmWith(served.config.contextLength, tokenizer, (positions) => { run = newRun(positions); return run.steps }, {
      promptIds,
      maxTokens: req.maxTokens,
      sampler,
      onToken: (id, piece) => { emit({ type: 'token', id, piece: Buffer.from(piece).toString('base64') }) }
    })
    const members = await run!.finish()
    return {
      ...jobRecord(ids, served.identity.id, run!, members),
      kind: chat ? 'chat' : 'prompt',
      text: chat ? r.text : req.prompt + r.text,
      token_ids: [...r.promptTokenIds, ...r.generatedIds],
      prompt_token_ids: [...r.promptTokenIds],
      generated_tokens: r.generatedIds.length,
      stop_reason: r.stopReason,
      tokens_per_second: r.tokensPerSecond,
      time_to_first_token_ms: r.firstTokenMs,
      total_ms: r.totalMs
    }
  } finally {
    run?.abort()
  }
}
