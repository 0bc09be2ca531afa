import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const dir = mkdtempSync(path.join(tmpdir(), 'mesh-infer-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const CHECKPOINT = 'models/stories260K/stories260K.bin'
const golden = JSON.parse(readFileSync('test/fixtures/golden/stories260K-greedy.json', 'utf8')) as {
  generations: Array<{ prompt: string, steps: number, prompt_token_ids: number[], token_ids: number[], output_text: string, stdout_exact: string }>
}

interface Outcome { code: number, stdout: string, stderr: string }
async function mesh (...args: string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run('node', ['dist/cli/mesh.js', ...args], { env: { ...process.env, MESH_HOME: path.join(dir, 'home') } })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

function checkpointVariant (name: string, change: (b: Buffer) => Buffer): string {
  const file = path.join(dir, name)
  writeFileSync(file, change(Buffer.from(readFileSync(CHECKPOINT))))
  return file
}

describe('mesh inference --local', () => {
  it('streams run.c\'s exact greedy output, then speed figures on stderr', async () => {
    const g = golden.generations.find((x) => x.prompt === 'Once upon a time' && x.steps === 256)
    if (g === undefined) throw new Error('golden case missing')
    const r = await mesh('inference', '--local', '--prompt', g.prompt, '--max-tokens', String(g.steps - g.prompt_token_ids.length + 1), '--temperature', '0')
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(g.stdout_exact)
    expect(r.stderr).toMatch(/^achieved tok\/s: [\d.]+, time to first token: [\d.]+ ms, load: \d+ ms, 252 tokens \(max-tokens\)/)
  })

  it('prints one JSON object with --json, and the seed makes sampling reproducible', async () => {
    const args = ['inference', '--local', '--prompt', 'Lily and Tom', '--max-tokens', '40', '--temperature', '0.8', '--top-p', '0.9', '--seed', '1234', '--json']
    const a = await mesh(...args)
    const b = await mesh(...args)
    expect(a.code).toBe(0)
    const ja = JSON.parse(a.stdout) as Record<string, unknown>
    expect(ja).toMatchObject({ generated_tokens: expect.any(Number), stop_reason: expect.stringMatching(/max-tokens|bos|eos/), engine: expect.any(String) })
    expect(ja.text).toMatch(/^Lily and Tom/)
    expect(ja.tokens_per_second === null || typeof ja.tokens_per_second === 'number').toBe(true)
    expect(typeof ja.time_to_first_token_ms).toBe('number')
    expect((ja.model as { checkpoint_sha256: string }).checkpoint_sha256).toBe('b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696')
    expect(JSON.parse(b.stdout).token_ids).toEqual(ja.token_ids)
    const c = JSON.parse((await mesh(...args.slice(0, -3), '--seed', '99', '--json')).stdout) as { token_ids: number[] }
    expect(c.token_ids).not.toEqual(ja.token_ids)
  })

  it('starts from BOS with an empty prompt', async () => {
    const g = golden.generations.find((x) => x.prompt === '' && x.steps === 64)
    const r = await mesh('inference', '--local', '--prompt', '', '--max-tokens', '64', '--temperature', '0', '--json')
    expect(JSON.parse(r.stdout).token_ids).toEqual(g?.token_ids)
  })

  const tooLong = 'the quick brown fox jumps over the lazy dog '.repeat(60)
  mkdirSync(path.join(dir, 'a-directory'))
  const bad: Array<[string, () => string[], RegExp]> = [
    ['a truncated checkpoint', () => ['--model', checkpointVariant('trunc.bin', (b) => b.subarray(0, 500_000))], /truncated: 500000 bytes, but its header .* implies 1056540/],
    ['a padded checkpoint', () => ['--model', checkpointVariant('pad.bin', (b) => Buffer.concat([b, Buffer.alloc(4)]))], /has trailing bytes/],
    ['a zero in the header', () => ['--model', checkpointVariant('zero.bin', (b) => { b.writeInt32LE(0, 12); return b })], /header n_heads is 0/],
    ['a negative header value', () => ['--model', checkpointVariant('neg.bin', (b) => { b.writeInt32LE(-172, 4); return b })], /header hidden_dim is -172/],
    ['a huge header value', () => ['--model', checkpointVariant('huge.bin', (b) => { b.writeInt32LE(1 << 30, 0); return b })], /header dim is 1073741824, above the limit/],
    ['the wrong tokenizer', () => ['--tokenizer', 'test/fixtures/llama2-tokenizer/tokenizer.bin'], /more than the model's 512 tokens .* is it the tokenizer of this model\?/],
    ['a missing checkpoint', () => ['--model', path.join(dir, 'missing.bin')], /model .*missing\.bin does not exist/],
    ['a directory as checkpoint', () => ['--model', path.join(dir, 'a-directory')], /model .*a-directory is a directory, not a file/],
    ['a missing tokenizer', () => ['--tokenizer', path.join(dir, 'nope.bin')], /tokenizer .*nope\.bin does not exist/],
    ['a prompt over the context', () => ['--prompt', tooLong], /the prompt is \d+ tokens with BOS, longer than the model's context of 512/],
    ['--max-tokens 0', () => ['--max-tokens', '0'], /--max-tokens is 0; it must be a whole number of at least 1/],
    ['--max-tokens negative', () => ['--max-tokens', '-5'], /--max-tokens is -5/],
    ['--temperature negative', () => ['--temperature', '-0.5'], /--temperature is -0.5; use 0 \(greedy\) or a positive number/],
    ['--top-p 0', () => ['--top-p', '0'], /--top-p is 0; it must be in \(0, 1\]/],
    ['--top-p above 1', () => ['--top-p', '1.5'], /--top-p is 1.5/],
    ['--seed 0', () => ['--seed', '0'], /--seed is 0; use an integer from 1/],
    ['--threads 0', () => ['--threads', '0'], /--threads is 0/]
  ]
  for (const [name, args, message] of bad) {
    it(`rejects ${name} on one line, exit non-zero, nothing on stdout`, async () => {
      const given = args()
      const r = await mesh('inference', '--local', ...(given.includes('--max-tokens') ? [] : ['--max-tokens', '5']), ...given)
      expect(r.code).not.toBe(0)
      expect(r.stdout).toBe('')
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
      expect(r.stderr).toMatch(/^mesh: /)
      expect(r.stderr).toMatch(message)
    })
  }

  it('without --local needs the agent, and says how to start it', async () => {
    const r = await mesh('inference', '--prompt', 'hi')
    expect(r).toMatchObject({ code: 1, stdout: '' })
    expect(r.stderr).toMatch(/^mesh: the mesh agent is not running for .*; start it with `mesh start`\n$/)
  })

  it('refuses, without --local, the flags only --local uses, on one line (exit 2), and --help says so', async () => {
    const cases: Array<[string[], string]> = [
      [['--threads', '2'], 'mesh: --threads applies to --local only: pool members run the engine --engine auto picks on all their cores; drop it or add --local\n'],
      [['--engine', 'wasm', '--threads', '1'], 'mesh: --threads and --engine apply to --local only: pool members run the engine --engine auto picks on all their cores; drop them or add --local\n'],
      [['--model', 'other.bin'], 'mesh: --model applies to --local only: the pool runs the model its agents serve (mesh start --model); drop it or add --local\n']
    ]
    for (const [flags, message] of cases) {
      expect(await mesh('inference', '--prompt', 'hi', ...flags)).toEqual({ code: 2, stdout: '', stderr: message })
    }
    const help = (await mesh('inference', '--help')).stdout.replace(/\s+/g, ' ')
    for (const flag of ['--threads', '--engine', '--model', '--tokenizer']) expect(help).toMatch(new RegExp(`${flag} .*?--local only`))
  })
})

describe('mesh model synth / info', () => {
  it('writes a v1 checkpoint of a custom shape that info reads and inference runs', async () => {
    const out = path.join(dir, 'tiny.bin')
    const w = await mesh('model', 'synth', '--shape', 'dim=32,hidden=64,layers=2,heads=4,kv_heads=2,vocab=512,seq_len=64', '--format', 'v1', '--out', out, '--json')
    expect(w.code).toBe(0)
    const written = JSON.parse(w.stdout) as { bytes: number, sha256: string }
    const i = JSON.parse((await mesh('model', 'info', '--model', out, '--json')).stdout) as { format: string, bytes: number, sha256: string, config: { dim: number } }
    expect(i).toMatchObject({ format: 'v1', bytes: written.bytes, sha256: written.sha256, config: { dim: 32 } })
    const r = await mesh('inference', '--local', '--model', out, '--max-tokens', '10', '--temperature', '0', '--json')
    expect(JSON.parse(r.stdout).generated_tokens).toBeGreaterThan(0)
    const again = await mesh('model', 'synth', '--shape', 'stories260K', '--out', out)
    expect(again.code).not.toBe(0)
    expect(again.stderr).toMatch(/^mesh: .*tiny\.bin already exists/)
  })

  it('rejects an unknown shape with the accepted forms', async () => {
    const r = await mesh('model', 'synth', '--shape', 'stories7B', '--out', path.join(dir, 'x.bin'))
    expect(r.code).toBe(2)
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/unknown shape "stories7B"; use one of stories260K, stories15M, stories42M, stories110M/)
  })
})

describe('load progress bar', () => {
  // a 21 MiB checkpoint is read in two 16 MiB chunks, so the bar has a step to draw before the end
  const shape = 'dim=256,hidden=512,layers=8,heads=4,kv_heads=4,vocab=512,seq_len=64'
  const args = (model: string): string[] => ['inference', '--local', '--model', model, '--max-tokens', '1', '--temperature', '0']
  const env = { ...process.env, MESH_HOME: path.join(dir, 'home'), MESH_PROGRESS_AFTER_MS: '0' }

  it('draws on a terminal (a pseudo-terminal from script(1)) and stays off when stderr is a pipe', async (ctx) => {
    const model = path.join(dir, 'progress.bin')
    expect((await mesh('model', 'synth', '--shape', shape, '--out', model)).code).toBe(0)
    const script = await run('script', ['--version']).catch(() => null)
    if (script === null) ctx.skip('script(1) from util-linux is not installed: cannot run the CLI on a terminal')
    const command = ['node', 'dist/cli/mesh.js', ...args(model)].join(' ')
    const onTty = await run('script', ['-qec', command, '/dev/null'], { env })
    expect(onTty.stdout).toMatch(/loading model \[[█░]+\] 76% 16\/21 MiB/)
    expect(onTty.stdout).toMatch(/loading model \[█+\] 100% 21\/21 MiB/)
    const piped = await run('node', ['dist/cli/mesh.js', ...args(model)], { env })
    expect(piped.stderr).not.toMatch(/loading model/)
    expect(piped.stderr).toMatch(/achieved tok\/s/)
  })
})
