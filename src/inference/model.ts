import { createHash } from 'node:crypto'
import { loadCheckpoint, type Checkpoint } from './checkpoint.js'
import type { LoadProgress } from './files.js'
import type { ShardedModel } from './forward.js'
import { tsMatmuls, type Matmuls } from './matmuls.js'
import { onnxMatmuls } from './onnx-matmuls.js'
import { wholeModel, type Shard } from './shard.js'
import { loadTokenizer, type Tokenizer } from './tokenizer.js'
import { wasmHeap, wasmMatmuls, type WasmHeap } from './wasm-matmuls.js'

/** A model is its files: members of a ring compare these to be sure they run the same model. */
export interface ModelIdentity {
  readonly checkpointSha256: string
  readonly tokenizerSha256: string
  readonly id: string // sha256 of "<checkpoint sha256>\n<tokenizer sha256>\n"
}

export function modelIdentity (checkpointSha256: string, tokenizerSha256: string): ModelIdentity {
  const id = createHash('sha256').update(`${checkpointSha256}\n${tokenizerSha256}\n`).digest('hex')
  return { checkpointSha256, tokenizerSha256, id }
}

/**
 * Which kernels run the matrix work: plain TypeScript loops, WebAssembly SIMD (one thread), or
 * onnxruntime with `threads` intra-op threads.
 */
export type EngineName = 'ts' | 'wasm' | 'onnx'
export interface Engine { readonly name: EngineName, readonly threads: number }
export const ENGINES: readonly EngineName[] = ['ts', 'wasm', 'onnx']

/**
 * The engine `--engine auto` runs, from bench/README.md: WebAssembly SIMD on one thread beat plain
 * TypeScript (4-6x) and onnxruntime on every shape measured, and on an idle machine it also beat
 * onnxruntime with two threads (15M shape 347 vs 180 tok/s, 110M shape 48.5 vs 42.1). Using the
 * second core well needs a multi-threaded wasm kernel, which does not exist yet.
 */
export function chooseEngine (): Engine {
  return { name: 'wasm', threads: 1 }
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

/** The whole model (or one shard of it) on an engine; ts by default. */
export async function shardedModel (m: LoadedModel, engine: Engine = { name: 'ts', threads: 1 }, shard: Shard = wholeModel(m.checkpoint.config)): Promise<ShardedModel> {
  const { config, weights } = m.checkpoint
  return { config, weights, shard, matmuls: await createMatmuls(m, engine, shard) }
}

async function createMatmuls (m: LoadedModel, engine: Engine, shard: Shard): Promise<Matmuls> {
  const { config, weights } = m.checkpoint
  switch (engine.name) {
    case 'ts': return tsMatmuls(config, weights, shard)
    case 'onnx': return await onnxMatmuls(config, weights, shard, engine.threads)
    case 'wasm':
      if (m.heap === null) throw new Error('load the model with forWasm to run it on the wasm engine')
      return wasmMatmuls(config, weights, shard, m.heap)
  }
}
