import { z } from 'zod'
import { PARTIAL_FORMATS } from '../tensor-plane/q8-partials.js'

/**
 * The job protocol's control messages (libp2p, /mesh/job/1.0.0). They are few and small (one open,
 * one answer, one end, one report per member and job; a park and resumes between the requests of a
 * kept job), so JSON is fine here; tensors and tokens go
 * over the tensor plane as binary frames.
 */
export const JOB_PROTOCOL = '/mesh/job/1.0.0'
/** A job-open names up to a few hundred members; anything larger is not ours. */
export const MAX_JOB_MESSAGE_BYTES = 64 * 1024

/** Why a member will not take part in a job; the leader reports it. */
export const REFUSALS = ['not-member', 'stale-epoch', 'model-mismatch', 'bad-plan', 'busy', 'internal'] as const
export type Refusal = typeof REFUSALS[number]

/** The most positions one step of a job takes (a member allocates its buffers for them). */
export const MAX_JOB_BATCH = 512

const nodeId = z.string().min(1).max(255)
const u32 = z.number().int().min(0).max(0xffffffff)

const openSchema = z.strictObject({
  type: z.literal('open'),
  /** the job's number on the tensor plane (a new one for each attempt after a failover) */
  job: u32,
  poolId: z.string().regex(/^[0-9a-f]{64}$/),
  epoch: u32,
  leader: nodeId,
  /** sha256 of checkpoint and tokenizer (ModelIdentity.id): every member must serve the same model */
  modelId: z.string().regex(/^[0-9a-f]{64}$/),
  /** KV cache positions each member allocates */
  positions: z.number().int().min(1).max(1 << 20),
  /** positions per step: prompt chunks go through the ring this many at a time */
  batch: z.number().int().min(1).max(MAX_JOB_BATCH),
  /** how the partial sums travel (absent: float32) */
  partials: z.enum(PARTIAL_FORMATS).optional(),
  members: z.array(z.strictObject({ nodeId, start: z.number().int().min(0), end: z.number().int().min(1) })).min(1).max(512)
})
const readySchema = z.strictObject({ type: z.literal('ready') })
const refusedSchema = z.strictObject({ type: z.literal('refused'), reason: z.enum(REFUSALS), message: z.string().max(1000) })
const endSchema = z.strictObject({ type: z.literal('end') })
/** the leader keeps the job between two requests: wait for `resume` or `end`, with no step timeout */
const parkSchema = z.strictObject({ type: z.literal('park') })
/** the next request shares the first `position` tokens: positions from there on are fed again; answered by `resumed` */
const resumeSchema = z.strictObject({ type: z.literal('resume'), position: z.number().int().min(0).max(1 << 20) })
const resumedSchema = z.strictObject({ type: z.literal('resumed') })
const reportSchema = z.strictObject({
  type: z.literal('report'),
  positions: z.number().int().min(0),
  computeMs: z.number().min(0),
  networkMs: z.number().min(0)
})

const messageSchema = z.discriminatedUnion('type', [openSchema, readySchema, refusedSchema, endSchema, parkSchema, resumeSchema, resumedSchema, reportSchema])
export type JobMessage = z.infer<typeof messageSchema>
export type JobOpen = z.infer<typeof openSchema>
export type JobReport = z.infer<typeof reportSchema>

export function encodeJobMessage (m: JobMessage): Uint8Array {
  return Buffer.from(JSON.stringify(m), 'utf8')
}

/** Strict decode of untrusted bytes: the message, or undefined (the caller counts the drop). */
export function decodeJobMessage (bytes: Uint8Array): JobMessage | undefined {
  if (bytes.length > MAX_JOB_MESSAGE_BYTES) return undefined
  let raw: unknown
  try { raw = JSON.parse(Buffer.from(bytes).toString('utf8')) } catch { return undefined }
  const parsed = messageSchema.safeParse(raw)
  return parsed.success ? parsed.data : undefined
}

/**
 * One job's control stream between the leader and a member, as the job logic sees it. The agent
 * implements it over libp2p; tests may use an in-process pair.
 */
export interface ControlChannel {
  send: (m: JobMessage) => Promise<void>
  /** The next message; undefined once the stream ended (closed, reset, or undecodable). */
  receive: (timeoutMs?: number) => Promise<JobMessage | undefined>
  close: () => void
}
