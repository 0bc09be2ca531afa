import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadCheckpoint } from '../../src/inference/checkpoint.js'
import { CheckpointFormatError, ModelFileError, TokenizerFormatError } from '../../src/inference/errors.js'
import { loadModel } from '../../src/inference/model.js'
import { shardForColumns } from '../../src/inference/shard.js'
import type { ModelConfig } from '../../src/inference/config.js'

const CHECKPOINT = 'models/stories260K/stories260K.bin'
const TOKENIZER = 'models/stories260K/tok512.bin'
const dir = mkdtempSync(path.join(tmpdir(), 'mesh-load-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The real checkpoint with a change applied, written to a temporary file. */
function variant (name: string, change: (bytes: Buffer) => Buffer): string {
  const file = path.join(dir, name)
  writeFileSync(file, change(Buffer.from(readFileSync(CHECKPOINT))))
  return file
}
const withHeader = (index: number, value: number) => (b: Buffer): Buffer => { b.writeInt32LE(value, 4 * index); return b }

describe('checkpoint validation', () => {
  const cases: Array<[string, (b: Buffer) => Buffer, RegExp]> = [
    ['truncated', (b) => b.subarray(0, b.length - 4), /truncated: 1056536 bytes, but its header .* implies 1056540/],
    ['padded', (b) => Buffer.concat([b, Buffer.alloc(8)]), /has trailing bytes: 1056548 bytes/],
    ['zero dim', withHeader(0, 0), /header dim is 0, it must be a positive integer/],
    ['negative layers', withHeader(2, -5), /header n_layers is -5/],
    ['huge seq_len', withHeader(6, 0x7fffffff), /header seq_len is 2147483647, above the limit/],
    ['heads not dividing dim', withHeader(3, 7), /dim 64 is not divisible by n_heads 7/],
    ['kv heads not dividing heads', withHeader(4, 3), /n_heads 8 is not divisible by n_kv_heads 3/],
    ['shorter than a header', (b) => b.subarray(0, 10), /shorter than a checkpoint header/]
  ]
  for (const [name, change, message] of cases) {
    it(`rejects a ${name} checkpoint`, async () => {
      const err = await loadCheckpoint(variant(name.replace(/ /g, '-'), change)).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(CheckpointFormatError)
      expect((err as Error).message).toMatch(message)
    })
  }

  it('rejects a missing path and a directory', async () => {
    await expect(loadCheckpoint(path.join(dir, 'nope.bin'))).rejects.toThrow(/does not exist/)
    await expect(loadCheckpoint(dir)).rejects.toBeInstanceOf(ModelFileError)
    await expect(loadCheckpoint(dir)).rejects.toThrow(/is a directory, not a file/)
  })

  it('rejects a tokenizer whose vocabulary is not the model\'s', async () => {
    const tooBig = loadModel({ checkpointPath: CHECKPOINT, tokenizerPath: 'test/fixtures/llama2-tokenizer/tokenizer.bin' })
    await expect(tooBig).rejects.toBeInstanceOf(TokenizerFormatError)
    await expect(tooBig).rejects.toThrow(/more than the model's 512 tokens/)
    const cut = path.join(dir, 'tok-cut.bin')
    writeFileSync(cut, readFileSync(TOKENIZER).subarray(0, 3000))
    await expect(loadModel({ checkpointPath: CHECKPOINT, tokenizerPath: cut })).rejects.toThrow(/ends after \d+ tokens, but the model has a vocabulary of 512/)
  })

  it('identifies a model by the sha256 of its files', async () => {
    const copy = path.join(dir, 'copy.bin')
    copyFileSync(CHECKPOINT, copy)
    const a = await loadModel({ checkpointPath: CHECKPOINT, tokenizerPath: TOKENIZER })
    const b = await loadModel({ checkpointPath: copy, tokenizerPath: TOKENIZER })
    expect(b.identity).toEqual(a.identity)
    const other = await loadModel({ checkpointPath: variant('one-weight-changed', (x) => { x[1000] ^= 1; return x }), tokenizerPath: TOKENIZER })
    expect(other.identity.id).not.toBe(a.identity.id)
  })
})

describe('shardForColumns', () => {
  const shape = { dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true } satisfies ModelConfig
  it.each([
    [0, 8192, { kvHeadStart: 0, kvHeadEnd: 4, hiddenStart: 0, hiddenEnd: 172 }],
    [0, 4096, { kvHeadStart: 0, kvHeadEnd: 2, hiddenStart: 0, hiddenEnd: 86 }],
    [4096, 8192, { kvHeadStart: 2, kvHeadEnd: 4, hiddenStart: 86, hiddenEnd: 172 }],
    [0, 2731, { kvHeadStart: 0, kvHeadEnd: 1, hiddenStart: 0, hiddenEnd: 57 }],
    [2731, 5461, { kvHeadStart: 1, kvHeadEnd: 3, hiddenStart: 57, hiddenEnd: 115 }],
    [5461, 8192, { kvHeadStart: 3, kvHeadEnd: 4, hiddenStart: 115, hiddenEnd: 172 }]
  ])('columns [%i, %i) own %o', (start, end, expected) => {
    expect(shardForColumns(shape, start, end)).toEqual(expected)
  })
})
