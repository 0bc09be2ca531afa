import { z } from 'zod'
import { MeshError, UsageError } from '../../errors.js'
import type { MemberStats } from '../../inference/job/leader.js'

/*
 * What the local API's inference routes take and give, apart from the job machinery, so the CLI
 * loads only this (and not libp2p) to talk to the agent.
 */

/** A pool this agent cannot run a job in: none joined, several without --pool-id, or an unknown id. */
export class NoPoolError extends UsageError {}

/** A chat asked of a pool whose model has no chat template (a llama2.c checkpoint). */
export class ChatNotSupportedError extends UsageError {}

/** The job's caller gave up (an HTTP client went away, a stop string was reached): it ends at the next step. */
export class JobCancelledError extends MeshError {}

export const inferenceRequestSchema = z.strictObject({
  prompt: z.string().max(64 * 1024),
  maxTokens: z.number().int().min(1).max(1 << 20),
  temperature: z.number().min(0),
  topP: z.number().gt(0).max(1),
  seed: z.string().regex(/^\d{1,20}$/),
  poolId: z.string().regex(/^[0-9a-f]{1,64}$/).optional(),
  /** a chat (GGUF models with a chat template): rendered by the leader, which prints only the reply; `prompt` is then unused */
  messages: z.array(z.strictObject({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(64 * 1024) })).min(1).max(256).optional(),
  /** keep the job and its KV cache on the ring for a next request that extends this one (the API's multi-turn chats) */
  keepCache: z.boolean().optional()
})
export type InferenceRequest = z.infer<typeof inferenceRequestSchema>

/** What the local API streams to `mesh inference`, one JSON object a line. */
export type InferenceEvent =
  | { type: 'started', jobId: string, poolId: string }
  | { type: 'token', id: number, piece: string, echo?: true } // piece: base64 of the bytes run.c prints for it; echo: it repeats the prompt (a continuation prints its prompt first)
  | { type: 'prompt', tokens: number } // the prompt's length in tokens (BOS and special tokens included), once encoded
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
  /** prompt tokens a kept job already held in its KV cache, not fed again */
  cached_tokens: number
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

/** What a finished job on the ring reports whatever its model: the ids, failovers and every member's share. */
export function jobRecord (ids: { jobId: string, poolId: string }, modelId: string, run: { failovers: number }, members: readonly MemberStats[]): Pick<JobResult, 'job_id' | 'pool_id' | 'failovers' | 'finished_at' | 'model' | 'members'> {
  return { job_id: ids.jobId, pool_id: ids.poolId, failovers: run.failovers, finished_at: new Date().toISOString(), model: { id: modelId }, members: members.map(memberRow) }
}

export interface InferenceStats {
  totals: { jobs: number, failed: number, cancelled: number, generated_tokens: number, failovers: number }
  jobs: JobResult[]
  /** jobs in progress: led here (with tokens so far), and served here for another leader */
  active: { leading: ActiveJob[], serving: ServedJob[] }
}

export interface ActiveJob { job_id: string, pool_id: string, started_at: string, tokens: number }
export interface ServedJob { job: number, leader: string, pool_id: string, started_at: string }

