import { z } from 'zod'
import { UsageError } from '../../errors.js'
import type { MemberStats } from '../../inference/job/leader.js'

/*
 * What the local API's inference routes take and give, apart from the job machinery, so the CLI
 * loads only this (and not libp2p) to talk to the agent.
 */

/** A pool this agent cannot run a job in: none joined, several without --pool-id, or an unknown id. */
export class NoPoolError extends UsageError {}

/** A chat asked of a pool whose model has no chat template (a llama2.c checkpoint). */
export class ChatNotSupportedError extends UsageError {}

export const inferenceRequestSchema = z.strictObject({
  prompt: z.string().max(64 * 1024),
  maxTokens: z.number().int().min(1).max(1 << 20),
  temperature: z.number().min(0),
  topP: z.number().gt(0).max(1),
  seed: z.string().regex(/^\d{1,20}$/),
  poolId: z.string().regex(/^[0-9a-f]{1,64}$/).optional(),
  /** a chat (GGUF models with a chat template): rendered by the leader, which prints only the reply; `prompt` is then unused */
  messages: z.array(z.strictObject({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(64 * 1024) })).min(1).max(256).optional()
})
export type InferenceRequest = z.infer<typeof inferenceRequestSchema>

/** What the local API streams to `mesh inference`, one JSON object a line. */
export type InferenceEvent =
  | { type: 'started', jobId: string, poolId: string }
  | { type: 'token', id: number, piece: string } // piece: base64 of the bytes run.c prints for it
  | { type: 'notice', message: string }
  | { type: 'done', result: JobResult }
  | { type: 'error', error: string, usage: boolean, message: string }

export interface JobResult {
  job_id: string
  pool_id: string
  /** a chat's text is the reply; a prompt's includes the prompt (as llama2.c prints it) */
  kind: 'prompt' | 'chat'
  text: string
  token_ids: number[]
  prompt_token_ids: number[]
  generated_tokens: number
  stop_reason: string
  tokens_per_second: number | null
  time_to_first_token_ms: number
  total_ms: number
  failovers: number
  finished_at: string
  model: { id: string }
  members: JobMemberRow[]
}

export interface JobMemberRow { node_id: string, leader: boolean, columns: [number, number], heads: number, hidden_units: number, positions: number, compute_ms: number, network_ms: number }

/** A member's share of a finished job, as the API reports it. */
export function memberRow (m: MemberStats): JobMemberRow {
  return { node_id: m.nodeId, leader: m.leader, columns: [m.start, m.end], heads: m.heads, hidden_units: m.hiddenUnits, positions: m.positions, compute_ms: m.computeMs, network_ms: m.networkMs }
}

export interface InferenceStats {
  totals: { jobs: number, failed: number, generated_tokens: number, failovers: number }
  jobs: JobResult[]
}

