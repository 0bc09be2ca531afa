import { createHash } from 'node:crypto'
import { link, open, rm } from 'node:fs/promises'
import { checkpointBytes, elementCount, encodeHeader, headSize, tensorsInFileOrder, validateConfig, type CheckpointVersion, type ModelConfig, type TensorSpec } from './config.js'
import { CheckpointFormatError, InferenceSettingError } from './errors.js'

/** Named llama2.c shapes (../shared/models/README.md). All share the classifier with the embedding. */
export const SHAPES: Readonly<Record<string, ModelConfig>> = {
  stories260K: { dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true },
  stories15M: { dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, vocabSize: 32000, seqLen: 256, sharedClassifier: true },
  stories42M: { dim: 512, hiddenDim: 1376, nLayers: 8, nHeads: 8, nKvHeads: 8, vocabSize: 32000, seqLen: 1024, sharedClassifier: true },
  stories110M: { dim: 768, hiddenDim: 2048, nLayers: 12, nHeads: 12, nKvHeads: 12, vocabSize: 32000, seqLen: 1024, sharedClassifier: true }
}

const SHAPE_KEYS: Record<string, keyof Omit<ModelConfig, 'sharedClassifier'>> = {
  dim: 'dim', hidden: 'hiddenDim', layers: 'nLayers', heads: 'nHeads', kv_heads: 'nKvHeads', vocab: 'vocabSize', seq_len: 'seqLen'
}
const CUSTOM_SYNTAX = 'dim=64,hidden=172,layers=5,heads=8,kv_heads=4,vocab=512,seq_len=512'

/** A shape name, or every hyperparameter as key=value pairs, e.g. `${CUSTOM_SYNTAX}`. */
export function parseShape (text: string, sharedClassifier = true): ModelConfig {
  const named = SHAPES[text]
  if (named !== undefined) return { ...named, sharedClassifier }
  if (!text.includes('=')) throw new InferenceSettingError(`unknown shape ${JSON.stringify(text)}; use one of ${Object.keys(SHAPES).join(', ')} or ${CUSTOM_SYNTAX}`)
  const values: Partial<Record<keyof ModelConfig, number>> = {}
  for (const pair of text.split(',')) {
    const [key, value, extra] = pair.split('=')
    const field = SHAPE_KEYS[key.trim()]
    if (field === undefined || extra !== undefined || !/^\d+$/.test(value?.trim() ?? '')) {
      throw new InferenceSettingError(`bad shape entry ${JSON.stringify(pair)}; write every field as in ${CUSTOM_SYNTAX}`)
    }
    values[field] = Number(value)
  }
  const missing = Object.entries(SHAPE_KEYS).filter(([, f]) => values[f] === undefined).map(([k]) => k)
  if (missing.length > 0) throw new InferenceSettingError(`the shape is missing ${missing.join(', ')}; write every field as in ${CUSTOM_SYNTAX}`)
  const config = { ...(values as Omit<ModelConfig, 'sharedClassifier'>), sharedClassifier }
  try {
    validateConfig(config, 'shape')
  } catch (err) {
    if (err instanceof CheckpointFormatError) throw new InferenceSettingError(err.message)
    throw err
  }
  return config
}

export interface SynthResult {
  readonly path: string
  readonly bytes: number
  readonly sha256: string
}

/** Standard deviation of the random weights: that of a freshly initialised llama2.c model. */
const WEIGHT_STD = 0.02

/** The values of one tensor: element i (in file order) of tensor t. */
export type TensorFill = (t: TensorSpec) => (i: number) => number

/**
 * Write a llama2.c checkpoint, taking every value from `fill`. Written to a temporary name and
 * then linked to `path`, so a crash leaves no half file and an existing file is never replaced
 * (EEXIST).
 */
export async function writeCheckpoint (path: string, c: ModelConfig, version: CheckpointVersion, fill: TensorFill): Promise<SynthResult> {
  const tmp = `${path}.tmp-${process.pid}`
  const fh = await open(tmp, 'wx')
  const hash = createHash('sha256')
  try {
    const write = async (bytes: Uint8Array): Promise<void> => { hash.update(bytes); await fh.write(bytes) }
    await write(encodeHeader(c, version))
    // 4 Mi floats per write: bounded memory for any shape
    const chunk = new Float32Array(1 << 22)
    for (const t of tensorsInFileOrder(c, version)) {
      const value = fill(t)
      for (let at = 0; at < elementCount(t); at += chunk.length) {
        const n = Math.min(chunk.length, elementCount(t) - at)
        for (let i = 0; i < n; i++) chunk[i] = value(at + i)
        await write(new Uint8Array(chunk.buffer, 0, n * 4))
      }
    }
    await fh.close()
    await link(tmp, path)
  } catch (err) {
    await fh.close().catch(() => {})
    throw err
  } finally {
    await rm(tmp, { force: true })
  }
  return { path, bytes: checkpointBytes(c, version), sha256: hash.digest('hex') }
}

/**
 * Random weights as a freshly initialised llama2.c model has them: normal with std 0.02, RMSNorm
 * weights 1.0, and v0's RoPE tables filled in. Each tensor has its own stream derived from the
 * seed and its name, so v0 and v1 files of one seed hold the same weights.
 */
export function randomWeights (c: ModelConfig, seed: bigint): TensorFill {
  return (t) => {
    if (t.name === 'rmsAtt' || t.name === 'rmsFfn' || t.name === 'rmsFinal') return () => 1
    if (t.name === 'freqCisReal' || t.name === 'freqCisImag') {
      const half = headSize(c) / 2
      const trig = t.name === 'freqCisReal' ? Math.cos : Math.sin
      return (i) => trig(Math.floor(i / half) * Math.pow(10000, -(2 * (i % half)) / headSize(c)))
    }
    const normal = normalRng(seed, t.name)
    return () => WEIGHT_STD * normal()
  }
}

/** `mesh model synth`: a checkpoint of any shape with random weights; the same seed writes the same file. */
export async function writeSyntheticCheckpoint (path: string, c: ModelConfig, version: CheckpointVersion, seed: bigint): Promise<SynthResult> {
  return await writeCheckpoint(path, c, version, randomWeights(c, seed))
}

/**
 * Standard normal samples (Box–Muller) from mulberry32: 32-bit integer arithmetic only, because
 * the sampler's BigInt xorshift is far too slow for the 100M values of a large shape.
 */
function normalRng (seed: bigint, stream: string): () => number {
  let state = Number(seed & 0xffffffffn) | 0
  for (let i = 0; i < stream.length; i++) state = Math.imul(state ^ stream.charCodeAt(i), 0x9e3779b1)
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  let spare: number | null = null
  return () => {
    if (spare !== null) { const s = spare; spare = null; return s }
    const u = 1 - uniform() // (0, 1]: log stays finite
    const r = Math.sqrt(-2 * Math.log(u))
    const phi = 2 * Math.PI * uniform()
    spare = r * Math.sin(phi)
    return r * Math.cos(phi)
  }
}
