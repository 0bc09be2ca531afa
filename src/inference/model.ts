import { open } from 'node:fs/promises'
import { modelIdentity, type ModelIdentity } from './identity.js'
import { nativeKernels } from './native.js'
import { nativeMatmuls } from './native-matmuls.js'
import { loadCheckpoint, readCheckpointHeader, type Checkpoint, type Weights } from './checkpoint.js'
import type { ModelConfig } from './config.js'
import { allocateHeap, fileReadAt, hashFile, type LoadProgress } from './files.js'
import type { ShardedModel } from './forward.js'
import { tsMatmuls, type Matmuls } from './matmuls.js'
import { checkShard, isWholeModel, wholeModel, type Shard } from './shard.js'
import { fillShard, planShard } from './shard-weights.js'
import { loadTokenizer, type Tokenizer } from './tokenizer.js'
import { wasmHeap, wasmMatmuls, type WasmHeap } from './wasm-matmuls.js'

/**
 * Which kernels run the matrix work: plain TypeScript loops, WebAssembly SIMD, C built on this
 * machine (native), or onnxruntime, on `threads` threads (ts always runs on one).
 */
export type EngineName = 'ts' | 'wasm' | 'native' | 'onnx'
export interface Engine { readonly name: EngineName, readonly threads: number }
export const ENGINES: readonly EngineName[] = ['ts', 'wasm', 'native', 'onnx']

/**
 * A model whose FFN matrices (dim × hidden) hold fewer weights than this runs on one thread:
 * stories260K (64 × 172 = 11K) has no product worth splitting; a second thread only adds its
 * hand-offs (native 7,400 vs 4,000-5,300 tok/s, bench/README.md).
 */
const MIN_WEIGHTS_FOR_THREADS = 1 << 17

/**
 * The kernels `--engine auto` runs, from bench/README.md: the C kernels (as fast as llama2.c)
 * where they were built, else WebAssembly SIMD, which beat plain TypeScript (4-6x) and
 * onnxruntime on every shape measured.
 */
export function autoEngineName (): EngineName {
  return typeof nativeKernels() === 'string' ? 'wasm' : 'native'
}

/**
 * The auto engine on every thread offered when the model's matrices are large enough to split
 * (the stories15M shape, 288 × 768, and larger), else on one.
 */
export function chooseEngine (config: ModelConfig, threads: number): Engine {
  return { name: autoEngineName(), threads: threadsFor(config.dim, config.hiddenDim, threads) }
}

/** The threads worth using on a model whose FFN matrices are dim × hidden (see MIN_WEIGHTS_FOR_THREADS). */
export function threadsFor (dim: number, hidden: number, threads: number): number {
  return dim * hidden >= MIN_WEIGHTS_FOR_THREADS ? threads : 1
}

export interface LoadedModel {
  readonly checkpoint: Checkpoint
  readonly tokenizer: Tokenizer
  readonly identity: ModelIdentity
  readonly loadMs: number
  readonly heap: WasmHeap | null // where the weights live when the wasm engine will run them
}

export interface LoadModelOptions {
  readonly checkpointPath: string
  readonly tokenizerPath: string
  readonly onProgress?: LoadProgress
  /** Load straight into WebAssembly memory, so the wasm engine reads the weights in place. */
  readonly forWasm?: boolean
}

/** Load and cross-check a checkpoint and its tokenizer (the tokenizer must have the model's vocabulary). */
export async function loadModel (opts: LoadModelOptions): Promise<LoadedModel> {
  const start = performance.now()
  const heap = opts.forWasm === true ? wasmHeap() : null
  const checkpoint = await loadCheckpoint(opts.checkpointPath, { onProgress: opts.onProgress, allocate: heap?.allocate })
  const tokenizer = await loadTokenizer(opts.tokenizerPath, checkpoint.config.vocabSize)
  return { checkpoint, tokenizer, identity: modelIdentity(checkpoint.sha256, tokenizer.sha256), loadMs: performance.now() - start, heap }
}

/**
 * The whole model (or one shard of it) on an engine; ts by default. A partial shard copies its
 * slices out of the loaded checkpoint; loadShardModel reads only them from the file instead.
 */
export async function shardedModel (m: LoadedModel, engine: Engine = { name: 'ts', threads: 1 }, shard: Shard = wholeModel(m.checkpoint.config)): Promise<ShardedModel> {
  const { config, weights, bytes, version, headerBytes } = m.checkpoint
  checkShard(config, shard)
  if (isWholeModel(config, shard)) return await onEngine(config, weights, shard, engine, m.heap)
  const plan = planShard(config, version, headerBytes, shard, true)
  const heap = engine.name === 'wasm' ? wasmHeap() : null
  const buffer = (heap?.allocate ?? allocateHeap)(plan.bytes)
  await fillShard(plan, buffer, async (into, position) => { into.set(bytes.subarray(position, position + into.byteLength)) })
  return await onEngine(config, plan.views(buffer), shard, engine, heap)
}

export interface LoadShardOptions {
  readonly checkpointPath: string
  readonly tokenizerPath: string
  /** The shard, or how to choose it from the model's shape (e.g. shardForColumns of ring columns). */
  readonly shard: Shard | ((config: ModelConfig) => Shard)
  readonly engine: Engine
  /** Load the classifier too; only the member that samples needs it. */
  readonly withClassifier: boolean
  /** Load the token embedding (default); a job's member gets each position's row from the leader instead. */
  readonly withEmbedding?: boolean
  /** The checkpoint's sha256 when already known (the agent hashes its model at start); else hashed here. */
  readonly checkpointSha256?: string
  readonly onProgress?: LoadProgress
}

export interface LoadedShard {
  readonly model: ShardedModel
  readonly tokenizer: Tokenizer
  readonly identity: ModelIdentity
  readonly weightBytes: number // the weights this member holds
  readonly loadMs: number
}

/**
 * Load one member's shard: only the weight slices it computes with (plus the norms and, if
 * asked, the embedding and the classifier), read with positioned reads into one buffer (in the wasm
 * heap for the wasm engine). Memory per member falls as the ring grows.
 */
export async function loadShardModel (opts: LoadShardOptions): Promise<LoadedShard> {
  const start = performance.now()
  const { version, headerBytes, config } = await readCheckpointHeader(opts.checkpointPath)
  const shard = typeof opts.shard === 'function' ? opts.shard(config) : opts.shard
  checkShard(config, shard)
  const tokenizer = await loadTokenizer(opts.tokenizerPath, config.vocabSize)
  const plan = planShard(config, version, headerBytes, shard, opts.withClassifier, opts.withEmbedding)
  const heap = opts.engine.name === 'wasm' ? wasmHeap() : null
  const buffer = (heap?.allocate ?? allocateHeap)(plan.bytes)
  const fh = await open(opts.checkpointPath, 'r')
  try {
    await fillShard(plan, buffer, fileReadAt(fh, opts.checkpointPath), opts.onProgress)
  } finally {
    await fh.close()
  }
  const checkpointSha256 = opts.checkpointSha256 ?? await hashFile(opts.checkpointPath)
  const model = await onEngine(config, plan.views(buffer), shard, opts.engine, heap)
  return { model, tokenizer, identity: modelIdentity(checkpointSha256, tokenizer.sha256), weightBytes: plan.bytes, loadMs: performance.now() - start }
}

async function onEngine (config: ModelConfig, weights: Weights, shard: Shard, engine: Engine, heap: WasmHeap | null): Promise<ShardedModel> {
  return { config, weights, shard, matmuls: await createMatmuls(config, weights, shard, engine, heap) }
}

async function createMatmuls (config: ModelConfig, weights: Weights, shard: Shard, engine: Engine, heap: WasmHeap | null): Promise<Matmuls> {
  switch (engine.name) {
    case 'ts': return tsMatmuls(config, weights, shard)
    case 'native': return nativeMatmuls(config, weights, shard, engine.threads)
    // imported here: loading onnxruntime's native library costs every command (and `mesh start`) hundreds of ms
    case 'onnx': return await (await import('./onnx-matmuls.js')).onnxMatmuls(config, weights, shard, engine.threads)
    case 'wasm':
      if (heap === null) throw new Error('load the model with forWasm to run it on the wasm engine')
      return await wasmMatmuls(config, weights, shard, heap, engine.threads)
  }
}

export { modelIdentity, type ModelIdentity }
