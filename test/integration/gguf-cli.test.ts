import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readGguf } from '../../src/inference/gguf/reader.js'
import { ggufTokenizer } from '../../src/inference/text/tokenizer.js'
import { child, meshFails, meshOk } from '../helpers/mesh-cli.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'

const dir = mkdtempSync(path.join(tmpdir(), 'mesh-gguf-cli-'))
const home = path.join(dir, 'home')
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const model = (name: string): string => sharedPath(`models/gguf/${name}.gguf`)
const golden = JSON.parse(readFileSync('test/fixtures/golden/stories260K-greedy.json', 'utf8')) as {
  generations: Array<{ prompt: string, steps: number, prompt_token_ids: number[], token_ids: number[], output_text: string }>
}
// the Llama 3.2 template prints today's date: the chat goldens were rendered on 2026-12-06 (UTC), so
// on another day the expected prompt carries today's date and its ids come from the (golden-checked) tokenizer
const TZ = { TZ: 'UTC' }
const GOLDEN_DAY = '06 Dec 2026'
const now = new Date()
const today = `${String(now.getUTCDate()).padStart(2, '0')} ${'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' ')[now.getUTCMonth()]} ${now.getUTCFullYear()}` // strftime's %d %b %Y
async function expectedPrompt (name: string, golden: { rendered_prompt: string, prompt_token_ids: number[] }): Promise<{ text: string, ids: number[] }> {
  if (!golden.rendered_prompt.includes(GOLDEN_DAY) || today === GOLDEN_DAY) return { text: golden.rendered_prompt, ids: golden.prompt_token_ids }
  const text = golden.rendered_prompt.replace(GOLDEN_DAY, today)
  const file = await readGguf(model(name))
  return { text, ids: ggufTokenizer(file.metadata, file.path).encode(text, { addSpecial: true, parseSpecial: true }) }
}

// each test runs several CLI processes that load a model: about 10 s on an idle machine, several times it on a loaded one
describe.skipIf(SHARED_DIR === null)('mesh inference --local and mesh model on GGUF files', { timeout: 120_000 }, () => {
  it('stories260K.f32.gguf: greedy text equals llama2.c\'s golden on every engine', async () => {
    const g = golden.generations.find((x) => x.prompt === 'Once upon a time' && x.steps === 64) // the GGUF's context is 128
    if (g === undefined) throw new Error('golden case missing')
    for (const engine of ['ts', 'wasm', 'auto']) {
      const out = await meshOk(child, home, ['inference', '--local', '--model', model('stories260K.f32'), '--prompt', g.prompt,
        '--max-tokens', String(g.steps - g.prompt_token_ids.length + 1), '--temperature', '0', '--engine', engine, '--json'])
      const j = JSON.parse(out) as { text: string, token_ids: number[], prompt_token_ids: number[] }
      expect(j.prompt_token_ids).toEqual(g.prompt_token_ids)
      expect(j.token_ids).toEqual(g.token_ids)
      expect(j.text).toBe(g.output_text)
    }
  })

  it('stories260K.q8_0.gguf: --engine wasm gives the native engine\'s greedy text', async () => {
    const run = async (engine: string): Promise<{ text: string, token_ids: number[], engine: string }> =>
      JSON.parse(await meshOk(child, home, ['inference', '--local', '--model', model('stories260K.q8_0'), '--prompt', 'Once upon a time',
        '--max-tokens', '60', '--temperature', '0', '--engine', engine, '--json'])) as { text: string, token_ids: number[], engine: string }
    const [wasm, native] = [await run('wasm'), await run('native')]
    expect(wasm.engine).toBe('wasm')
    expect(native.engine).toBe('native')
    expect(wasm.token_ids).toEqual(native.token_ids)
    expect(wasm.text).toBe(native.text)
  })

  for (const name of ['llama3-test.q4_k_m', 'qwen2-test.q8_0', 'qwen3-test.q4_k_m']) {
    it(`${name}: --messages renders the model's template, prints only the reply, and --json has both token lists`, async () => {
      const cases = (JSON.parse(readFileSync(sharedPath(`golden/gguf/${name}.chat.json`), 'utf8')) as { cases: Array<{ messages: unknown, rendered_prompt: string, prompt_token_ids: number[] }> }).cases
      const c = cases[cases.length - 1] as typeof cases[number]
      const file = path.join(dir, `${name}.messages.json`)
      writeFileSync(file, JSON.stringify(c.messages))
      const j = JSON.parse(await meshOk(child, home, ['inference', '--local', '--model', model(name), '--messages', file, '--temperature', '0', '--max-tokens', '8', '--json'], TZ)) as
        { text: string, rendered_prompt: string, prompt_token_ids: number[], reply_token_ids: number[], token_ids: number[] }
      const expected = await expectedPrompt(name, c)
      expect(j.rendered_prompt).toBe(expected.text)
      expect(j.prompt_token_ids).toEqual(expected.ids)
      expect(j.reply_token_ids).toHaveLength(8)
      expect(j.token_ids).toEqual([...j.prompt_token_ids, ...j.reply_token_ids])
      const plain = await meshOk(child, home, ['inference', '--local', '--model', model(name), '--messages', file, '--temperature', '0', '--max-tokens', '8'], TZ)
      expect(plain).toBe(j.text + '\n') // the reply alone, no prompt
    })
  }

  it('--chat with --system, and generation stops at an end-of-generation token unless --ignore-eog', async () => {
    const args = ['inference', '--local', '--model', model('qwen2-test.q8_0'), '--system', 'You are terse.', '--chat', 'Hi', '--temperature', '0', '--max-tokens', '4', '--json']
    const j = JSON.parse(await meshOk(child, home, args)) as { rendered_prompt: string, stop_reason: string }
    expect(j.rendered_prompt).toContain('<|im_start|>system\nYou are terse.<|im_end|>')
    expect(['max-tokens', 'eog']).toContain(j.stop_reason)
  })

  it('model info names the architecture, quantization, tokenizer and template; --json has the same', async () => {
    const text = await meshOk(child, home, ['model', 'info', '--model', model('llama3-test.q4_k_m')])
    expect(text).toMatch(/llama3-test \(llama\)/)
    expect(text).toMatch(/Q4_K_M; tensors .*Q4_K 24/)
    expect(text).toMatch(/gpt2 \(pre-tokenizer llama3\), 128256 tokens/)
    expect(text).toMatch(/128009 "<\|eot_id\|>"/)
    const j = JSON.parse(await meshOk(child, home, ['model', 'info', '--model', model('qwen3-test.q4_k_m'), '--json'])) as Record<string, any>
    expect(j).toMatchObject({ format: 'gguf', architecture: 'qwen3', fileType: 'Q4_K_M', chatTemplate: true, tokenizer: { model: 'gpt2', pre: 'qwen2' } })
    expect(j.sha256).toMatch(/^[0-9a-f]{64}$/)
  })

  it('model perplexity is within 0.5 % of llama.cpp\'s llama-perplexity', async () => {
    const expected = (JSON.parse(readFileSync(sharedPath('golden/gguf/perplexity.json'), 'utf8')) as { results: Array<{ model: string, ctx: number, chunks: number, ppl: number }> }).results
    for (const r of expected.filter((x) => x.ctx === 64)) {
      const j = JSON.parse(await meshOk(child, home, ['model', 'perplexity', '--model', sharedPath(`models/gguf/${r.model}`), '--file', sharedPath('golden/gguf/perplexity-text.txt'), '--ctx', String(r.ctx), '--json'])) as { ppl: number, chunks: number }
      expect(j.chunks).toBe(r.chunks)
      expect(Math.abs(j.ppl / r.ppl - 1)).toBeLessThan(0.005)
    }
  })

  it('bad input is one line and a non-zero exit', async () => {
    const f32 = model('stories260K.f32')
    await meshFails(child, home, ['inference', '--local', '--model', f32, '--tokenizer', 'x.bin'], /--tokenizer does not apply to GGUF models/)
    await meshFails(child, home, ['inference', '--local', '--model', f32, '--chat', 'hi'], /has no chat template/)
    await meshFails(child, home, ['inference', '--local', '--model', f32, '--system', 'x'], /--system needs --chat/)
    await meshFails(child, home, ['inference', '--local', '--model', f32, '--engine', 'onnx'], /--engine onnx does not run GGUF models/)
    await meshFails(child, home, ['inference', '--local', '--model', f32, '--ctx', '100000'], /--ctx/)
    const bad = path.join(dir, 'bad.json')
    writeFileSync(bad, '[{"role": "robot", "content": "x"}]')
    await meshFails(child, home, ['inference', '--local', '--model', model('qwen2-test.q8_0'), '--messages', bad], /--messages .*role/)
    writeFileSync(bad, 'not json')
    await meshFails(child, home, ['inference', '--local', '--model', model('qwen2-test.q8_0'), '--messages', bad], /is not JSON/)
    const truncated = path.join(dir, 'truncated.gguf')
    writeFileSync(truncated, readFileSync(f32).subarray(0, 200_000))
    await meshFails(child, home, ['inference', '--local', '--model', truncated], /truncated\.gguf/)
    await meshFails(child, home, ['model', 'info', '--model', truncated], /truncated\.gguf/)
  })
})
