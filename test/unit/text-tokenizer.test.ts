import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { readGguf } from '../../src/inference/gguf/reader.js'
import { ggufTokenizer, textDecoder, type TextTokenizer } from '../../src/inference/text/tokenizer.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'

const VOCABS = ['llama-spm', 'llama-bpe', 'qwen2', 'gpt-2', 'phi-3']

/** llama.cpp's tests/test-tokenizer-0 format: cases split by a marker line, one line of ids per case. */
function vectors (name: string): Array<[string, number[]]> {
  const base = sharedPath(`models/vocab/ggml-vocab-${name}.gguf`)
  const inputs = readFileSync(`${base}.inp`, 'utf8').split('\n__ggml_vocab_test__\n')
  const outputs = readFileSync(`${base}.out`, 'utf8').split('\n')
  if (outputs[outputs.length - 1] === '') outputs.pop()
  if (inputs[inputs.length - 1] === '') inputs.pop()
  expect(inputs.length).toBe(outputs.length)
  return inputs.map((text, i) => [text, (outputs[i] as string).trim().split(' ').filter((s) => s !== '').map(Number)])
}

async function vocab (name: string): Promise<TextTokenizer> {
  const path = sharedPath(`models/vocab/ggml-vocab-${name}.gguf`)
  const f = await readGguf(path)
  return ggufTokenizer(f.metadata, path)
}

const decodeAll = (t: TextTokenizer, ids: readonly number[]): string => {
  const d = textDecoder(t)
  return ids.map((id) => d.push(id)).join('') + d.flush()
}

describe.skipIf(SHARED_DIR === null)('GGUF tokenizers against llama.cpp\'s test vectors', () => {
  for (const name of VOCABS) {
    it(`${name}: every case gives llama.cpp's ids`, async () => {
      const t = await vocab(name)
      const cases = vectors(name)
      expect(cases.length).toBeGreaterThan(20)
      const wrong = cases.filter(([text, ids]) => JSON.stringify(t.encode(text, { addSpecial: false, parseSpecial: false })) !== JSON.stringify(ids))
      expect(wrong.map(([text]) => text)).toEqual([])
    })
  }

  it('decoding streams whole characters only and round-trips byte-level text', async () => {
    const t = await vocab('llama-bpe')
    const text = 'Hello 🦙 and Бълга́рски 1314151天～'
    const ids = t.encode(text, { addSpecial: false, parseSpecial: false })
    const d = textDecoder(t)
    const pieces = ids.map((id) => d.push(id))
    for (const p of pieces) expect(p).not.toContain('\ufffd')
    expect(pieces.join('') + d.flush()).toBe(text)
  })

  it('SentencePiece decodes byte-fallback tokens into characters', async () => {
    const t = await vocab('llama-spm')
    const text = ' 🦙 ok'
    expect(decodeAll(t, t.encode(text, { addSpecial: false, parseSpecial: false }))).toBe('  🦙 ok') // the space prefix comes back
  })

  it('control tokens in the text are tokens only with parseSpecial, and end generation', async () => {
    const t = await vocab('llama-bpe')
    const eot = t.encode('<|eot_id|>', { addSpecial: false, parseSpecial: true })
    expect(eot.length).toBe(1)
    expect(t.eog.has(eot[0] as number)).toBe(true)
    expect(t.encode('<|eot_id|>', { addSpecial: false, parseSpecial: false }).length).toBeGreaterThan(1)
    expect(t.encode('hi', { addSpecial: true, parseSpecial: false })[0]).toBe(t.bos)
    expect(decodeAll(t, eot)).toBe('') // control tokens print nothing
  })
})

describe('GGUF tokenizer metadata errors', () => {
  const meta = (entries: Record<string, unknown>): Map<string, never> => new Map(Object.entries(entries)) as Map<string, never>
  it('names a missing or unsupported tokenizer on one line', () => {
    expect(() => ggufTokenizer(meta({}), 'm.gguf')).toThrow(/m\.gguf: tokenizer\.ggml\.model is missing/)
    expect(() => ggufTokenizer(meta({ 'tokenizer.ggml.model': 'bert' }), 'm.gguf')).toThrow(/tokenizer "bert" is not supported/)
    expect(() => ggufTokenizer(meta({ 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.tokens': ['a'], 'tokenizer.ggml.pre': 'nope' }), 'm.gguf')).toThrow(/pre-tokenizer "nope" is not supported/)
    expect(() => ggufTokenizer(meta({ 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.tokens': ['a', 'b'], 'tokenizer.ggml.scores': new Float32Array(1) }), 'm.gguf')).toThrow(/scores is not 2 float32/)
    expect(() => ggufTokenizer(meta({ 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.tokens': ['a'] }), 'm.gguf')).toThrow(/merges is missing/)
  })
})
