import { Template } from '@huggingface/jinja'
import { GgufFormatError, UnsupportedModelError } from '../errors.js'
import type { GgufValue } from '../gguf/reader.js'
import type { TextTokenizer } from './tokenizer.js'

/**
 * A model's own chat template (`tokenizer.chat_template`, Jinja), rendered with what llama.cpp
 * passes templates: messages, add_generation_prompt, bos_token, eos_token, and the helpers
 * strftime_now and raise_exception (@huggingface/jinja provides both).
 */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant'
  readonly content: string
}

export interface ChatTemplate {
  readonly source: string
  readonly template: Template
  readonly bosToken: string
  readonly eosToken: string
  // the tokenizer adds these itself, so a template that writes them has them cut (as llama.cpp's common/chat.cpp does)
  readonly addBos: boolean
  readonly addEos: boolean
}

/** The file's template, parsed; a model without one (or with one that does not parse) is one clear line. */
export function chatTemplateFrom (metadata: ReadonlyMap<string, GgufValue>, tokenizer: TextTokenizer, where: string): ChatTemplate {
  const source = metadata.get('tokenizer.chat_template')
  if (source === undefined) throw new UnsupportedModelError(`${where} has no chat template (tokenizer.chat_template); use --prompt with the model's own prompt format instead of --chat`)
  if (typeof source !== 'string') throw new GgufFormatError(`${where}: tokenizer.chat_template is not a string`)
  let template: Template
  try {
    template = new Template(source)
  } catch (err) {
    throw new UnsupportedModelError(`${where}: its chat template does not parse (${(err as Error).message}); use --prompt instead of --chat`)
  }
  const text = (id: number | null): string => id === null ? '' : tokenizer.tokenText(id)
  return { source, template, bosToken: text(tokenizer.bos), eosToken: text(tokenizer.eos), addBos: tokenizer.addBos, addEos: tokenizer.addEos }
}

/** The conversation as the model expects its prompt; addGenerationPrompt opens the assistant's turn. */
export function renderChat (t: ChatTemplate, messages: readonly ChatMessage[], opts: { addGenerationPrompt: boolean }): string {
  let out: string
  try {
    out = t.template.render({
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: opts.addGenerationPrompt,
      bos_token: t.bosToken,
      eos_token: t.eosToken
    })
  } catch (err) {
    // raise_exception in a template is how it refuses a conversation (e.g. roles out of order)
    throw new UnsupportedModelError(`the model's chat template refused this conversation: ${(err as Error).message}`)
  }
  if (t.addBos && t.bosToken !== '' && out.startsWith(t.bosToken)) out = out.slice(t.bosToken.length)
  if (t.addEos && t.eosToken !== '' && out.endsWith(t.eosToken)) out = out.slice(0, -t.eosToken.length)
  return out
}
