import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { MeshError } from '../../src/errors.js'
import { llmConfig, modelTensors } from '../../src/inference/gguf/architecture.js'
import { parseGguf, readGguf } from '../../src/inference/gguf/reader.js'
import { GgufFormatError, UnsupportedModelError } from '../../src/inference/errors.js'
import { writeGguf, type GgufSpec, type MetaValue } from '../helpers/gguf-writer.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'

const SHARED = new URL(`file://${sharedPath('models/gguf/')}`)
const dir = mkdtempSync(path.join(tmpdir(), 'mesh-gguf-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

const F32 = 0
const f32s = (n: number): Uint8Array => new Uint8Array(new Float32Array(n).fill(0.5).buffer)

/** A tiny llama: dim 8, one layer, 2 heads, vocab 4, every tensor F32. */
function tinyLlama (): GgufSpec {
  const u32 = (value: number): MetaValue => ({ type: 'u32', value })
  const m = (name: string, dims: number[]): { name: string, dims: number[], type: number, data: Uint8Array } => ({ name, dims, type: F32, data: f32s(dims.reduce((a, b) => a * b, 1)) })
  return {
    metadata: [
      ['general.architecture', { type: 'string', value: 'llama' }],
      ['llama.embedding_length', u32(8)], ['llama.block_count', u32(1)], ['llama.feed_forward_length', u32(16)],
      ['llama.attention.head_count', u32(2)], ['llama.context_length', u32(32)],
      ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
      ['tokenizer.ggml.tokens', { type: 'string[]', value: ['<unk>', '<s>', '</s>', '▁a'] }],
      ['tokenizer.ggml.scores', { type: 'f32[]', value: [0, 0, 0, -1] }],
      ['tokenizer.ggml.token_type', { type: 'i32[]', value: [2, 3, 3, 1] }]
    ],
    tensors: [
      m('token_embd.weight', [8, 4]), m('output_norm.weight', [8]),
      m('blk.0.attn_norm.weight', [8]), m('blk.0.attn_q.weight', [8, 8]), m('blk.0.attn_k.weight', [8, 8]),
      m('blk.0.attn_v.weight', [8, 8]), m('blk.0.attn_output.weight', [8, 8]), m('blk.0.ffn_norm.weight', [8]),
      m('blk.0.ffn_gate.weight', [8, 16]), m('blk.0.ffn_up.weight', [8, 16]), m('blk.0.ffn_down.weight', [16, 8])
    ]
  }
}

const parse = (bytes: Uint8Array): ReturnType<typeof parseGguf> => parseGguf(bytes, bytes.byteLength, 'm.gguf')
const model = (bytes: Uint8Array): void => { const f = parse(bytes); modelTensors(f, llmConfig(f)) }

describe('GGUF reader', () => {
  it.skipIf(SHARED_DIR === null)('reads every test model: metadata, tensors, data inside the file', async () => {
    for (const name of ['stories260K.f32', 'stories260K.q8_0', 'stories260K.q4_0', 'llama3-test.q4_k_m', 'qwen2-test.q8_0', 'qwen3-test.q4_k_m', 'llama2-test.f16']) {
      const f = await readGguf(new URL(`${name}.gguf`, SHARED).pathname)
      const c = llmConfig(f)
      const t = modelTensors(f, c)
      expect(t.layers).toHaveLength(c.nLayers)
      expect(f.dataOffset % f.alignment).toBe(0)
      expect(Math.max(...f.tensors.map((x) => f.dataOffset + x.offset + x.bytes))).toBeLessThanOrEqual(f.fileBytes)
    }
    const q3 = llmConfig(await readGguf(new URL('qwen3-test.q4_k_m.gguf', SHARED).pathname))
    expect(q3).toMatchObject({ arch: 'qwen3', dim: 256, headDim: 64, nHeads: 8, nKvHeads: 2, qkNorm: true, ropeStyle: 'neox', tiedClassifier: true })
    const l3 = llmConfig(await readGguf(new URL('llama3-test.q4_k_m.gguf', SHARED).pathname))
    expect(l3).toMatchObject({ arch: 'llama', ropeFreqs: true, ropeTheta: 500000, ropeStyle: 'interleaved' })
    const q2 = llmConfig(await readGguf(new URL('qwen2-test.q8_0.gguf', SHARED).pathname))
    expect(q2).toMatchObject({ arch: 'qwen2', qkvBias: true })
  })

  it('parses a file it wrote, and the tiny llama is a model', () => {
    const f = parse(writeGguf(tinyLlama()))
    expect(f.tensors).toHaveLength(11)
    expect(llmConfig(f)).toMatchObject({ dim: 8, nKvHeads: 2, headDim: 4, vocabSize: 4, tiedClassifier: true })
    model(writeGguf(tinyLlama()))
  })

  const bad: Array<[string, () => Uint8Array, RegExp, typeof MeshError]> = [
    ['wrong magic', () => { const b = writeGguf(tinyLlama()); b[0] = 0x47 + 1; return b }, /is not a GGUF file/, GgufFormatError],
    ['version 1', () => writeGguf({ ...tinyLlama(), version: 1 }), /version 1 is not supported/, GgufFormatError],
    ['version 4', () => writeGguf({ ...tinyLlama(), version: 4 }), /version 4 is not supported/, GgufFormatError],
    ['big-endian', () => writeGguf({ ...tinyLlama(), version: 0x03000000 }), /big-endian/, GgufFormatError],
    ['truncated data', () => writeGguf(tinyLlama()).subarray(0, -8), /ends past the end of the file/, GgufFormatError],
    ['truncated header', () => writeGguf(tinyLlama()).subarray(0, 200), /truncated GGUF file|ends past/, GgufFormatError],
    ['tensor count larger than the file', () => writeGguf({ ...tinyLlama(), tensorCount: 1n << 40n }), /truncated GGUF file \(it ends inside the tensor count\)/, GgufFormatError],
    ['metadata count larger than the file', () => writeGguf({ ...tinyLlama(), kvCount: 1n << 62n }), /larger than any file|ends inside the metadata count/, GgufFormatError],
    ['tensor past the end', () => { const s = tinyLlama(); s.tensors[1].offset = 1 << 20; return writeGguf(s).subarray(0, 4096) }, /ends past the end of the file/, GgufFormatError],
    ['overlapping tensors', () => { const s = tinyLlama(); s.tensors[2].offset = 0; return writeGguf(s) }, /overlap/, GgufFormatError],
    ['misaligned tensor', () => { const s = tinyLlama(); s.tensors[1].offset = 4; return writeGguf(s) }, /not a multiple of the alignment/, GgufFormatError],
    ['unknown tensor type', () => { const s = tinyLlama(); s.tensors[0].type = 99; return writeGguf(s) }, /type id 99, which mesh does not know/, GgufFormatError],
    ['unsupported tensor type', () => { const s = tinyLlama(); s.tensors[0].type = 16; return writeGguf(s) }, /IQ2_XXS, which mesh cannot run/, GgufFormatError],
    ['unknown architecture', () => { const s = tinyLlama(); s.metadata[0] = ['general.architecture', { type: 'string', value: 'mamba' }]; return writeGguf(s) }, /architecture mamba is not supported \(mesh runs llama, qwen2, qwen3\)/, UnsupportedModelError],
    ['shape that does not match', () => { const s = tinyLlama(); s.tensors[3] = { ...s.tensors[3], dims: [8, 4], data: f32s(32) }; return writeGguf(s) }, /attn_q.weight is 8 x 4, but the metadata implies 8 x 8/, UnsupportedModelError],
    ['missing tensor', () => { const s = tinyLlama(); s.tensors.pop(); return writeGguf(s) }, /ffn_down.weight is missing/, UnsupportedModelError],
    ['heads that do not divide', () => { const s = tinyLlama(); s.metadata.push(['llama.attention.head_count_kv', { type: 'u32', value: 3 }]); return writeGguf(s) }, /do not divide/, UnsupportedModelError],
    ['zero layers', () => { const s = tinyLlama(); s.metadata[2] = ['llama.block_count', { type: 'u32', value: 0 }]; return writeGguf(s) }, /block_count is 0/, UnsupportedModelError],
    ['duplicate key', () => { const s = tinyLlama(); s.metadata.push(s.metadata[1]); return writeGguf(s) }, /appears twice/, GgufFormatError],
    ['bad alignment', () => writeGguf({ ...tinyLlama(), metadata: [...tinyLlama().metadata, ['general.alignment', { type: 'u32', value: 3 }]] }), /power of two/, GgufFormatError]
  ]
  it.each(bad)('%s: one clear error', (_name, make, message, cls) => {
    let err: unknown
    try { model(make()) } catch (e) { err = e }
    expect(err).toBeInstanceOf(cls)
    expect((err as Error).message).toMatch(message)
    expect((err as Error).message).not.toContain('\n')
  })

  it.skipIf(SHARED_DIR === null)('a file on disk: readGguf names it, and a truncated download says so', async () => {
    const file = path.join(dir, 'cut.gguf')
    writeFileSync(file, readFileSync(new URL('qwen2-test.q8_0.gguf', SHARED)).subarray(0, -1000))
    await expect(readGguf(file)).rejects.toThrow(/cut\.gguf: tensor .* ends past the end of the file; the file is truncated or corrupt/)
    writeFileSync(file, readFileSync(new URL('qwen2-test.q8_0.gguf', SHARED)).subarray(0, 100_000))
    await expect(readGguf(file)).rejects.toThrow(/cut\.gguf: truncated GGUF file/)
  })
})

/** xorshift32: a fuzz run is reproducible from its seed. */
function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s }
}

describe.skipIf(SHARED_DIR === null)('GGUF fuzz', () => {
  it('10,000 mutated headers: each parses or fails with one clear error (counts are checked against the bytes left before any allocation)', () => {
    const base = readFileSync(new URL('stories260K.q4_0.gguf', SHARED))
    const head = parse(base).headerBytes
    const next = rng(20261206)
    let failures = 0
    for (let i = 0; i < 10_000; i++) {
      const b = Uint8Array.from(base)
      const edits = 1 + (next() % 4)
      for (let e = 0; e < edits; e++) {
        const at = next() % head
        const kind = next() % 3
        if (kind === 0) b[at] = next() & 0xff
        else if (kind === 1) b[at] = 0xff // large counts and lengths
        else b.fill(0xff, at, Math.min(head, at + 8)) // a whole u64 made huge
      }
      try {
        const f = parse(b)
        modelTensors(f, llmConfig(f))
      } catch (err) {
        failures++
        expect(err).toBeInstanceOf(MeshError)
        expect((err as Error).message).not.toContain('\n')
      }
    }
    expect(failures).toBeGreaterThan(1000) // the mutations do break most headers
  }, 120_000)
})
