import { UsageError } from '../../errors.js'
import { generateLlm } from '../../inference/llm/generate.js'
import type { RingView } from '../../inference/job/leader.js'
import { createSampler } from '../../inference/sampler.js'
import type { ServedGguf } from '../../inference/served.js'
import type { InferenceEvent, InferenceRequest, JobResult } from './events.js'
import type { ModelHost } from './models.js'

/** A GGUF job on a ring of more than this agent: tensor parallelism over quantized weights comes next. */
export class GgufRingError extends UsageError {}

/**
 * A job on a GGUF model, run by this agent alone: the ring must be this one member (splitting
 * quantized layers across members is the next step). The prompt's special tokens are parsed and
 * generation stops at the model's end-of-generation tokens, as `mesh inference --local` does.
 */
export async function leadGgufJob (
  host: ModelHost, served: ServedGguf, ring: RingView, selfId: string,
  req: InferenceRequest, ids: { jobId: string, poolId: string }, emit: (e: InferenceEvent) => void
): Promise<JobResult> {
  const others = ring.members.filter((m) => m.nodeId !== selfId)
  if (others.length > 0) {
    throw new GgufRingError(`this pool's ring has ${ring.members.length} members, and GGUF models run on a ring of one member for now; stop the others' agents, or run this one with \`mesh inference --local --model ${served.checkpointPath}\``)
  }
  const { g, model } = await host.gguf(served)
  const sampler = createSampler({ temperature: req.temperature, topP: req.topP, seed: BigInt(req.seed) })
  const promptIds = g.tokenizer.encode(req.prompt, { addSpecial: true, parseSpecial: true })
  emit({ type: 'started', ...ids })
  // the prompt prints first, as it does for a llama2.c model
  emit({ type: 'token', id: promptIds[promptIds.length - 1] ?? 0, piece: Buffer.from(req.prompt).toString('base64') })
  const start = performance.now()
  const r = await generateLlm(model, g.tokenizer, {
    promptIds,
    maxTokens: req.maxTokens,
    sampler,
    onToken: (id, text) => { emit({ type: 'token', id, piece: Buffer.from(text).toString('base64') }) }
  })
  const computeMs = performance.now() - start
  return {
    job_id: ids.jobId,
    pool_id: ids.poolId,
    text: req.prompt + r.text,
    token_ids: [...r.promptTokenIds, ...r.generatedIds],
    prompt_token_ids: [...r.promptTokenIds],
    generated_tokens: r.generatedIds.length,
    stop_reason: r.stopReason,
    tokens_per_second: r.tokensPerSecond,
    time_to_first_token_ms: r.firstTokenMs,
    total_ms: r.totalMs,
    failovers: 0,
    finished_at: new Date().toISOString(),
    model: { id: served.identity.id },
    members: [{ node_id: selfId, leader: true, columns: [0, 8192], heads: g.config.nHeads, hidden_units: g.config.hidden, positions: r.positions, compute_ms: computeMs, network_ms: 0 }]
  }
}
