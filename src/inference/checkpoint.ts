import { CheckpointFormatError } from './errors.js'
import { allocateHeap, readHead, readWholeFile, regularFileSize, type Allocate, type LoadProgress } from './files.js'
import {
  checkpointBytes, elementCount, parseHeader, tensorsInFileOrder, V1_HEADER_BYTES,
  type CheckpointHeader, type CheckpointVersion, type ModelConfig, type TensorName
} from './config.js'

/**
 * One layer's weights as one shard holds them, row-major [out, in]: only the shard's rows of
 * Wq/Wk/Wv/W1/W3 and columns of Wo/W2 (shardDims: qDim, kvDim, hidden). For the whole model
 * these are the file's tensors unchanged.
 */
export interface LayerWeights {
  readonly rmsAtt: Float32Array // (dim,)
  readonly wq: Float32Array // (qDim, dim)
  readonly wk: Float32Array // (kvDim, dim)
  readonly wv: Float32Array // (kvDim, dim)
  readonly wo: Float32Array // (dim, qDim)
  readonly rmsFfn: Float32Array // (dim,)
  readonly w1: Float32Array // (hidden, dim)
  readonly w2: Float32Array // (dim, hidden)
  readonly w3: Float32Array // (hidden, dim)
}

export interface Weights {
  /** (vocab, dim); null on a member loaded without it (the leader sends it each position's row) */
  readonly tokEmb: Float32Array | null
  readonly layers: readonly LayerWeights[]
  readonly rmsFinal: Float32Array // (dim,)
  /** (vocab, dim); the same memory as tokEmb when shared; null on a member loaded without it */
  readonly wcls: Float32Array | null
}

export interface Checkpoint {
  readonly path: string
  readonly version: CheckpointVersion
  readonly headerBytes: number
  readonly config: ModelConfig
  readonly weights: Weights
  readonly bytes: Uint8Array // the whole file; every weight is a view into it
  readonly sha256: string
}

export interface LoadOptions {
  onProgress?: LoadProgress
  allocate?: Allocate
}

/** Load a llama2.c checkpoint (v0 or v1 fp32): validate the header and size, read once, make views. */
export async function loadCheckpoint (path: string, opts: LoadOptions = {}): Promise<Checkpoint> {
  const { version, headerBytes, config, size } = await readCheckpointHeader(path)
  const { bytes, sha256 } = await readWholeFile(path, size, opts.allocate ?? allocateHeap, opts.onProgress)
  return { path, version, headerBytes, config, weights: weightViews(bytes, headerBytes, config, version), bytes, sha256 }
}

/** A checkpoint's header, checked against the file's size, without reading the weights. */
export async function readCheckpointHeader (path: string): Promise<CheckpointHeader & { readonly size: number }> {
  const size = await regularFileSize(path, 'checkpoint')
  const header = parseHeader(await readHead(path, V1_HEADER_BYTES), `checkpoint ${path}`)
  const { version, config } = header
  const expected = checkpointBytes(config, version)
  if (size !== expected) {
    const how = size < expected ? 'truncated' : 'has trailing bytes'
    throw new CheckpointFormatError(`checkpoint ${path} ${how}: ${size} bytes, but its header (v${version}, dim ${config.dim}, ${config.nLayers} layers, vocab ${config.vocabSize}) implies ${expected}`)
  }
  return { ...header, size }
}

/** One view per tensor of the file, walking the tensors in file order. */
export function tensorViews (bytes: Uint8Array, headerBytes: number, c: ModelConfig, version: CheckpointVersion): Map<TensorName, Float32Array> {
  const all = new Float32Array(bytes.buffer, bytes.byteOffset + headerBytes, (bytes.byteLength - headerBytes) / 4)
  const tensors = new Map<TensorName, Float32Array>()
  let at = 0
  for (const t of tensorsInFileOrder(c, version)) {
    tensors.set(t.name, all.subarray(at, at + elementCount(t)))
    at += elementCount(t)
  }
  return tensors
}

/** The forward pass's view of the whole model: per-layer views of the file's stacked tensors. */
export function weightViews (bytes: Uint8Array, headerBytes: number, c: ModelConfig, version: CheckpointVersion): Weights {
  const tensors = tensorViews(bytes, headerBytes, c, version)
  return assembleWeights(c, (name) => tensors.get(name) as Float32Array, true)
}

/**
 * Weights from stacked tensors (`whole` gives each, layers first): the layer views, and the
 * embedding and the classifier (the embedding when shared) only if asked for.
 */
export function assembleWeights (c: ModelConfig, whole: (name: TensorName) => Float32Array, withClassifier: boolean, withEmbedding = true): Weights {
  const layer = (name: TensorName, l: number): Float32Array => {
    const t = whole(name)
    const per = t.length / c.nLayers
    return t.subarray(l * per, (l + 1) * per)
  }
  const layers = Array.from({ length: c.nLayers }, (_, l): LayerWeights => ({
    rmsAtt: layer('rmsAtt', l),
    wq: layer('wq', l),
    wk: layer('wk', l),
    wv: layer('wv', l),
    wo: layer('wo', l),
    rmsFfn: layer('rmsFfn', l),
    w1: layer('w1', l),
    w2: layer('w2', l),
    w3: layer('w3', l)
  }))
  const tokEmb = withEmbedding || (withClassifier && c.sharedClassifier) ? whole('tokEmb') : null
  const wcls = !withClassifier ? null : c.sharedClassifier ? tokEmb : whole('wcls')
  return { tokEmb, layers, rmsFinal: whole('rmsFinal'), wcls }
}
