import { CheckpointFormatError } from './errors.js'

/** The hyperparameters of a llama2.c model, as its checkpoint header states them. */
export interface ModelConfig {
  readonly dim: number // transformer width
  readonly hiddenDim: number // FFN hidden units
  readonly nLayers: number
  readonly nHeads: number // query heads
  readonly nKvHeads: number // key/value heads (fewer than nHeads: grouped-query attention)
  readonly vocabSize: number
  readonly seqLen: number // context length
  readonly sharedClassifier: boolean // logits use the token embedding table (else a separate wcls)
}

/** llama2.c checkpoint formats this engine reads: 0 = legacy fp32 (run.c), 1 = "ak42" v1 fp32. */
export type CheckpointVersion = 0 | 1

export const V0_HEADER_BYTES = 28
export const V1_HEADER_BYTES = 256
export const V1_MAGIC = 0x616b3432 // "ak42" read as a little-endian uint32

/**
 * Upper bounds on header values. Far above any model that fits in memory here; they exist so a
 * corrupt header is rejected with a clear message before any size arithmetic can overflow.
 */
const MAX_HEADER_VALUE: Record<Exclude<keyof ModelConfig, 'sharedClassifier'>, number> = {
  dim: 1 << 16,
  hiddenDim: 1 << 18,
  nLayers: 1 << 10,
  nHeads: 1 << 10,
  nKvHeads: 1 << 10,
  vocabSize: 1 << 22,
  seqLen: 1 << 20
}

const HEADER_NAMES: Record<keyof typeof MAX_HEADER_VALUE, string> = {
  dim: 'dim',
  hiddenDim: 'hidden_dim',
  nLayers: 'n_layers',
  nHeads: 'n_heads',
  nKvHeads: 'n_kv_heads',
  vocabSize: 'vocab_size',
  seqLen: 'seq_len'
}

export const headSize = (c: ModelConfig): number => c.dim / c.nHeads
export const kvDim = (c: ModelConfig): number => (c.dim * c.nKvHeads) / c.nHeads
/** How many query heads share one kv head. */
export const kvMul = (c: ModelConfig): number => c.nHeads / c.nKvHeads

/** Check that a config describes a model the forward pass can run; the message names the field. */
export function validateConfig (c: ModelConfig, where: string): void {
  for (const key of Object.keys(MAX_HEADER_VALUE) as Array<keyof typeof MAX_HEADER_VALUE>) {
    const v = c[key]
    if (!Number.isInteger(v) || v <= 0) throw new CheckpointFormatError(`${where}: header ${HEADER_NAMES[key]} is ${v}, it must be a positive integer`)
    if (v > MAX_HEADER_VALUE[key]) throw new CheckpointFormatError(`${where}: header ${HEADER_NAMES[key]} is ${v}, above the limit of ${MAX_HEADER_VALUE[key]} (corrupt header?)`)
  }
  if (c.dim % c.nHeads !== 0) throw new CheckpointFormatError(`${where}: dim ${c.dim} is not divisible by n_heads ${c.nHeads}`)
  if (c.nHeads % c.nKvHeads !== 0) throw new CheckpointFormatError(`${where}: n_heads ${c.nHeads} is not divisible by n_kv_heads ${c.nKvHeads}`)
  if (headSize(c) % 2 !== 0) throw new CheckpointFormatError(`${where}: head size ${headSize(c)} is odd; RoPE rotates pairs of values`)
}

/** The header parsed from the first bytes of a checkpoint file. */
export interface CheckpointHeader {
  readonly version: CheckpointVersion
  readonly headerBytes: number
  readonly config: ModelConfig
}

/**
 * Parse and validate a checkpoint header. `head` holds at least the first 256 bytes of the file
 * (or the whole file if shorter). v1 files start with the magic; anything else is read as v0.
 */
export function parseHeader (head: Uint8Array, where: string): CheckpointHeader {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength)
  if (head.byteLength >= 4 && view.getUint32(0, true) === V1_MAGIC) {
    if (head.byteLength < V1_HEADER_BYTES) throw new CheckpointFormatError(`${where}: v1 header truncated (${head.byteLength} of ${V1_HEADER_BYTES} bytes)`)
    const version = view.getInt32(4, true)
    if (version !== 1) throw new CheckpointFormatError(`${where}: checkpoint version ${version} is not supported (only v0 and v1 fp32)`)
    const config = { ...readSevenInts(view, 8), sharedClassifier: view.getUint8(36) === 1 }
    validateConfig(config, where)
    return { version: 1, headerBytes: V1_HEADER_BYTES, config }
  }
  if (head.byteLength < V0_HEADER_BYTES) throw new CheckpointFormatError(`${where}: file is ${head.byteLength} bytes, shorter than a checkpoint header (${V0_HEADER_BYTES} bytes)`)
  const ints = readSevenInts(view, 0)
  // llama2.c's legacy format marks a separate classifier with a negative vocab_size
  const config = { ...ints, vocabSize: Math.abs(ints.vocabSize), sharedClassifier: ints.vocabSize > 0 }
  validateConfig(config, where)
  return { version: 0, headerBytes: V0_HEADER_BYTES, config }
}

function readSevenInts (view: DataView, at: number): Omit<ModelConfig, 'sharedClassifier'> {
  const i = (k: number): number => view.getInt32(at + 4 * k, true)
  return { dim: i(0), hiddenDim: i(1), nLayers: i(2), nHeads: i(3), nKvHeads: i(4), vocabSize: i(5), seqLen: i(6) }
}

/** Encode a header; the inverse of parseHeader (used by the synth tool). */
export function encodeHeader (c: ModelConfig, version: CheckpointVersion): Uint8Array {
  const bytes = new Uint8Array(version === 0 ? V0_HEADER_BYTES : V1_HEADER_BYTES)
  const view = new DataView(bytes.buffer)
  const at = version === 0 ? 0 : 8
  const vocab = version === 0 && !c.sharedClassifier ? -c.vocabSize : c.vocabSize
  ;[c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, vocab, c.seqLen].forEach((v, k) => view.setInt32(at + 4 * k, v, true))
  if (version === 1) {
    view.setUint32(0, V1_MAGIC, true)
    view.setInt32(4, 1, true)
    view.setUint8(36, c.sharedClassifier ? 1 : 0)
  }
  return bytes
}

/** One float32 tensor of the file, stacked over layers where it has a layer axis. */
export interface TensorSpec {
  readonly name: TensorName
  readonly shape: readonly number[] // outermost first; layer axis first when present
}

export type TensorName = 'tokEmb' | 'rmsAtt' | 'wq' | 'wk' | 'wv' | 'wo' | 'rmsFfn' | 'w1' | 'w2' | 'w3' |
  'rmsFinal' | 'freqCisReal' | 'freqCisImag' | 'wcls'

/** The tensors of a checkpoint in file order, exactly as llama2.c writes them. */
export function tensorsInFileOrder (c: ModelConfig, version: CheckpointVersion): TensorSpec[] {
  const { dim, hiddenDim: hidden, nLayers: L, vocabSize: vocab } = c
  const kv = kvDim(c)
  const t = (name: TensorName, ...shape: number[]): TensorSpec => ({ name, shape })
  const wcls = c.sharedClassifier ? [] : [t('wcls', vocab, dim)]
  if (version === 1) {
    return [
      t('rmsAtt', L, dim), t('rmsFfn', L, dim), t('rmsFinal', dim), t('tokEmb', vocab, dim),
      t('wq', L, dim, dim), t('wk', L, kv, dim), t('wv', L, kv, dim), t('wo', L, dim, dim),
      t('w1', L, hidden, dim), t('w2', L, dim, hidden), t('w3', L, hidden, dim), ...wcls
    ]
  }
  return [
    t('tokEmb', vocab, dim), t('rmsAtt', L, dim),
    t('wq', L, dim, dim), t('wk', L, kv, dim), t('wv', L, kv, dim), t('wo', L, dim, dim),
    t('rmsFfn', L, dim), t('w1', L, hidden, dim), t('w2', L, dim, hidden), t('w3', L, hidden, dim),
    t('rmsFinal', dim),
    // RoPE tables of the first llama2.c versions; run.c recomputes RoPE and skips them
    t('freqCisReal', c.seqLen, headSize(c) / 2), t('freqCisImag', c.seqLen, headSize(c) / 2),
    ...wcls
  ]
}

export const elementCount = (t: TensorSpec): number => t.shape.reduce((a, b) => a * b, 1)

/** File size the header implies, in bytes. */
export function checkpointBytes (c: ModelConfig, version: CheckpointVersion): number {
  const floats = tensorsInFileOrder(c, version).reduce((n, t) => n + elementCount(t), 0)
  return (version === 0 ? V0_HEADER_BYTES : V1_HEADER_BYTES) + 4 * floats
}

/** Parameter count excluding the ignored RoPE tables. */
export function parameterCount (c: ModelConfig): number {
  return tensorsInFileOrder(c, 1).reduce((n, t) => n + elementCount(t), 0)
}
