import { readFileSync } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { readGguf } from '../../src/inference/gguf/reader.js'
import { chatTemplateFrom, renderChat, type ChatMessage } from '../../src/inference/text/chat-template.js'
import { ggufTokenizer } from '../../src/inference/text/tokenizer.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'

interface ChatCase { messages: ChatMessage[], rendered_prompt: string, prompt_token_ids: number[] }
const MODELS = ['llama3-test.q4_k_m', 'qwen2-test.q8_0', 'qwen3-test.q4_k_m']

describe.skipIf(SHARED_DIR === null)('chat templates against llama-server\'s renderings', () => {
  // the Llama 3.2 template prints today's date; the goldens were rendered on this day
  beforeEach(() => { vi.useFakeTimers({ toFake: ['Date'] }); vi.setSystemTime(new Date('2026-12-06T12:00:00Z')) })
  afterEach(() => { vi.useRealTimers() })

  for (const name of MODELS) {
    it(`${name}: every conversation renders and tokenizes as llama.cpp does`, async () => {
      const path = sharedPath(`models/gguf/${name}.gguf`)
      const f = await readGguf(path)
      const tok = ggufTokenizer(f.metadata, path)
      const template = chatTemplateFrom(f.metadata, tok, path)
      const golden = JSON.parse(readFileSync(sharedPath(`golden/gguf/${name}.chat.json`), 'utf8')) as { cases: ChatCase[] }
      expect(golden.cases.length).toBeGreaterThan(0)
      for (const c of golden.cases) {
        const rendered = renderChat(template, c.messages, { addGenerationPrompt: true })
        expect(rendered).toBe(c.rendered_prompt)
        expect(tok.encode(rendered, { addSpecial: true, parseSpecial: true })).toEqual(c.prompt_token_ids)
      }
    })
  }

  it('a model without a template is one clear line', async () => {
    const path = sharedPath('models/gguf/stories260K.f32.gguf')
    const f = await readGguf(path)
    expect(() => chatTemplateFrom(f.metadata, ggufTokenizer(f.metadata, path), path)).toThrow(/has no chat template .*use --prompt/)
  })
})
