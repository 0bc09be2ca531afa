import type { FinishReason, GenerationOutcome } from './generation.js'

/*
 * The OpenAI objects the gateway answers with, as plain data. Field order follows OpenAI's own
 * answers (clients do not care; people reading a stream do).
 */

/** The ring's model as /v1/models lists it. */
export interface GatewayModel {
  /** what clients send as `model`: the model file's name without its extension */
  readonly name: string
  /** the model's identity (sha256 of its files), which the ring's heartbeats announce; accepted as `model` too */
  readonly identity: string
  readonly format: 'llama2c' | 'gguf'
  readonly contextLength: number
  /** when this agent started serving it (s) */
  readonly created: number
}

export function modelObject (m: GatewayModel): object {
  return { id: m.name, object: 'model', created: m.created, owned_by: 'mesh', meta: { identity: m.identity, format: m.format, context_length: m.contextLength } }
}

export interface Ids { id: string, created: number, model: string }

export function chatCompletion (ids: Ids, o: GenerationOutcome): object {
  return {
    id: ids.id,
    object: 'chat.completion',
    created: ids.created,
    model: ids.model,
    choices: [{ index: 0, message: { role: 'assistant', content: o.text }, logprobs: null, finish_reason: o.finishReason }],
    usage: o.usage,
    timings: o.timings
  }
}

export function textCompletion (ids: Ids, o: GenerationOutcome): object {
  return {
    id: ids.id,
    object: 'text_completion',
    created: ids.created,
    model: ids.model,
    choices: [{ index: 0, text: o.text, logprobs: null, finish_reason: o.finishReason }],
    usage: o.usage,
    timings: o.timings
  }
}

/**
 * The chunks of a streamed answer, for either endpoint: the first chat delta carries the role,
 * the last choice chunk the finish reason (and llama-server's timings), and with include_usage
 * every chunk has `usage: null` until a last one with no choices carries the usage.
 */
export class ChunkMaker {
  constructor (private readonly endpoint: 'chat' | 'completion', private readonly ids: Ids, private readonly includeUsage: boolean) {}

  first (): object | undefined { return this.endpoint === 'chat' ? this.chunk({ role: 'assistant', content: '' }, null) : undefined }

  text (delta: string): object { return this.chunk(this.endpoint === 'chat' ? { content: delta } : delta, null) }

  finish (o: GenerationOutcome): object { return { ...this.chunk(this.endpoint === 'chat' ? {} : '', o.finishReason), timings: o.timings } }

  usage (o: GenerationOutcome): object | undefined {
    return this.includeUsage ? { ...this.head(), choices: [], usage: o.usage } : undefined
  }

  private head (): object {
    return { id: this.ids.id, object: this.endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion', created: this.ids.created, model: this.ids.model }
  }

  private chunk (delta: object | string, finish: FinishReason | null): object {
    const choice = typeof delta === 'string'
      ? { index: 0, text: delta, logprobs: null, finish_reason: finish }
      : { index: 0, delta, logprobs: null, finish_reason: finish }
    return { ...this.head(), choices: [choice], ...(this.includeUsage ? { usage: null } : {}) }
  }
}
