import { z } from 'zod'
import { InvalidRequestError } from './errors.js'

/*
 * What the two generation endpoints take, checked at the edge. Unknown fields are ignored (clients
 * send many); every field we read is checked, and a bad one is a 400 naming it in `param`.
 */

/** A message of the chat as the job takes it (the model's template renders it). */
export interface ChatTurn { role: 'system' | 'user' | 'assistant', content: string }

export interface GenerationRequest {
  readonly endpoint: 'chat' | 'completion'
  /** what the client named; undefined = the ring's model */
  readonly model: string | undefined
  readonly prompt: string // completion only ('' for chat)
  readonly messages: readonly ChatTurn[] | undefined // chat only
  /** undefined: until the model stops or the context is full */
  readonly maxTokens: number | undefined
  readonly temperature: number
  readonly topP: number
  /** undefined: a fresh one per request */
  readonly seed: bigint | undefined
  /** the output ends before the first of these; it never contains one */
  readonly stop: readonly string[]
  readonly stream: boolean
  readonly includeUsage: boolean
}

/** a whole chat history is re-sent each turn: room for a long one, far below the body limit */
const MAX_TEXT = 64 * 1024
/** OpenAI allows 4; editors' plugins send a template's worth of stop strings (llama-server takes any number) */
const MAX_STOPS = 16

const text = z.string().max(MAX_TEXT)
const textPart = z.object({ type: z.literal('text'), text })
const content = z.union([text, z.array(textPart).max(256)]).transform((c) => typeof c === 'string' ? c : c.map((p) => p.text).join(''))
const message = z.object({
  // developer is the newer name OpenAI gives system instructions
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content
})

const common = {
  model: z.string().max(256).optional(),
  max_tokens: z.number().int().min(1).max(1 << 20).nullish(),
  max_completion_tokens: z.number().int().min(1).max(1 << 20).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullish(),
  stop: z.union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).max(MAX_STOPS)]).nullish(),
  n: z.number().int().min(1).max(1).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  // read by nobody here, but numbers all the same: a bad one is still the client's mistake
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish()
}

const chatSchema = z.object({ ...common, messages: z.array(message).min(1).max(256) })
const completionSchema = z.object({ ...common, prompt: z.union([text, z.array(text).length(1)]).transform((p) => typeof p === 'string' ? p : p[0] as string) })

/** `messages[0].content`, as OpenAI names a nested field */
function paramOf (path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, k) => typeof k === 'number' ? `${acc}[${k}]` : acc === '' ? String(k) : `${acc}.${String(k)}`, '')
}

function parse<T> (schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidRequestError('the request body must be a JSON object')
  const r = schema.safeParse(body)
  if (r.success) return r.data
  const issue = r.error.issues[0]
  const param = issue === undefined ? null : paramOf(issue.path)
  if (param === 'n') throw new InvalidRequestError('only n = 1 is supported: the ring runs one completion per request', 'n')
  throw new InvalidRequestError(`invalid ${param ?? 'request'}: ${issue?.message ?? 'invalid'}`, param)
}

function settings (b: z.infer<z.ZodObject<typeof common>>): Omit<GenerationRequest, 'endpoint' | 'prompt' | 'messages'> {
  return {
    model: b.model,
    // the newer name wins, as in OpenAI's API
    maxTokens: b.max_completion_tokens ?? b.max_tokens ?? undefined,
    temperature: b.temperature ?? 1,
    topP: b.top_p ?? 1,
    seed: b.seed === null || b.seed === undefined ? undefined : BigInt(b.seed),
    stop: b.stop === null || b.stop === undefined ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop,
    stream: b.stream ?? false,
    includeUsage: b.stream_options?.include_usage ?? false
  }
}

export function parseChatRequest (body: unknown): GenerationRequest {
  const b = parse(chatSchema, body)
  const messages = b.messages.map((m): ChatTurn => ({ role: m.role === 'developer' ? 'system' : m.role, content: m.content }))
  return { endpoint: 'chat', prompt: '', messages, ...settings(b) }
}

export function parseCompletionRequest (body: unknown): GenerationRequest {
  const b = parse(completionSchema, body)
  return { endpoint: 'completion', prompt: b.prompt, messages: undefined, ...settings(b) }
}
