import type { InferenceEvent, InferenceRequest, JobResult } from '../../inference/events.js'
import { ApiError, InternalApiError, InvalidRequestError, RingUnavailableError } from './errors.js'
import { StopFilter } from './stop-text.js'

/** How the gateway runs a job: JobService.run, the path `mesh inference` takes (failover included). */
export interface JobRunner {
  run: (req: InferenceRequest, emit: (e: InferenceEvent) => void, signal?: AbortSignal) => Promise<void>
}

export type FinishReason = 'stop' | 'length'

export interface Usage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  /** prompt tokens whose KV cache was kept from the last request: none yet (see the report) */
  prompt_tokens_details: { cached_tokens: number }
}

/** As llama-server reports them: the prompt up to the first token, then the tokens after it. */
export interface Timings {
  prompt_n: number
  prompt_ms: number
  prompt_per_token_ms: number
  prompt_per_second: number
  predicted_n: number
  predicted_ms: number
  predicted_per_token_ms: number
  predicted_per_second: number
  cache_n: number
}

export interface GenerationOutcome {
  readonly text: string
  readonly finishReason: FinishReason
  readonly usage: Usage
  readonly timings: Timings
  readonly jobId: string
}

/** The client went away: the job was cancelled, nobody is left to answer. */
export class ClientGoneError extends Error {}

/** The job failed after the answer began; the stream ends with this error. */
const RING_ERRORS = new Set(['RingNotReadyError', 'NoPoolError', 'JobFailedError', 'MemberLostError'])

/** A job's error event as the API's error. */
export function apiErrorOf (e: Extract<InferenceEvent, { type: 'error' }>, endpoint: 'chat' | 'completion'): ApiError {
  if (RING_ERRORS.has(e.error)) return new RingUnavailableError(e.message)
  if (e.error === 'ChatNotSupportedError') return new InvalidRequestError(e.message, 'messages', 'chat_not_supported')
  if (e.error === 'PromptTooLongError') return new InvalidRequestError(e.message, endpoint === 'chat' ? 'messages' : 'prompt', 'context_length_exceeded')
  if (e.usage) return new InvalidRequestError(e.message)
  return new InternalApiError(`the job failed: ${e.message}`)
}

const finishOf = (stopReason: string): FinishReason => stopReason === 'max-tokens' || stopReason === 'context-full' ? 'length' : 'stop'

/**
 * Run one request as a ring job and hand its text to `onText` as it is generated (whole UTF-8
 * characters, stop strings cut off). The job is cancelled when `clientGone` aborts (ClientGoneError)
 * or a stop string is reached (a normal end). Job failures become ApiErrors.
 */
export async function runGeneration (
  runner: JobRunner, req: InferenceRequest, endpoint: 'chat' | 'completion', stops: readonly string[],
  clientGone: AbortSignal, onText: (delta: string) => void, now: () => number = () => performance.now()
): Promise<GenerationOutcome> {
  const cancel = new AbortController()
  const onGone = (): void => { cancel.abort() }
  clientGone.addEventListener('abort', onGone, { once: true })
  const filter = new StopFilter(stops)
  const decoder = new TextDecoder('utf-8')
  let text = ''
  let promptTokens = 0
  let tokens = 0
  let jobId = ''
  let firstAt: number | undefined
  let result: JobResult | undefined
  let failure: Extract<InferenceEvent, { type: 'error' }> | undefined
  const send = (delta: string): void => { if (delta !== '') { text += delta; onText(delta) } }
  const started = now()
  try {
    if (clientGone.aborted) throw new ClientGoneError()
    await runner.run(req, (e) => {
      if (e.type === 'started') jobId = e.jobId
      else if (e.type === 'prompt') promptTokens = e.tokens
      else if (e.type === 'token' && e.echo !== true) {
        firstAt ??= now()
        tokens++
        send(filter.push(decoder.decode(Buffer.from(e.piece, 'base64'), { stream: true })))
        // the rest of the text is not wanted: end the job at its next step
        if (filter.stopped) cancel.abort()
      } else if (e.type === 'done') result = e.result
      else if (e.type === 'error') failure = e
    }, cancel.signal)
  } finally {
    clientGone.removeEventListener('abort', onGone)
  }
  if (clientGone.aborted) throw new ClientGoneError()
  if (result === undefined && !filter.stopped) throw failure === undefined ? new InternalApiError('the job ended without a result') : apiErrorOf(failure, endpoint)
  if (!filter.stopped) { send(filter.push(decoder.decode())); send(filter.flush()) }
  const end = now()
  const completion = result?.generated_tokens ?? tokens
  const prompt = result?.prompt_token_ids.length ?? promptTokens
  const first = firstAt ?? end
  const promptMs = first - started
  const predictedMs = end - first
  return {
    text,
    jobId,
    finishReason: filter.stopped ? 'stop' : finishOf(result?.stop_reason ?? ''),
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: result?.cached_tokens ?? 0 } },
    timings: {
      prompt_n: prompt,
      prompt_ms: round(promptMs),
      prompt_per_token_ms: round(prompt > 0 ? promptMs / prompt : 0),
      prompt_per_second: round(promptMs > 0 ? prompt / (promptMs / 1000) : 0),
      // the first token's time is the prompt's: the rate is of the tokens after it
      predicted_n: completion,
      predicted_ms: round(predictedMs),
      predicted_per_token_ms: round(completion > 1 ? predictedMs / (completion - 1) : 0),
      predicted_per_second: round(completion > 1 && predictedMs > 0 ? (completion - 1) / (predictedMs / 1000) : 0),
      cache_n: 0
    }
  }
}

const round = (x: number): number => Math.round(x * 1000) / 1000
