import { llmConfig, modelTensors, type LlmConfig } from '../gguf/architecture.js'
import { readGguf, type GgufFile } from '../gguf/reader.js'
import { ggufTokenizer, type TextTokenizer } from '../text/tokenizer.js'
import { allocateHeap, readWholeFile, type LoadProgress } from '../files.js'
import { InferenceSettingError } from '../errors.js'
import type { LlmEngineName } from './engine.js'
import type { LlmModel } from './forward.js'
import { tsLinear } from './linear.js'
import { nativeLinear, packForNative } from './native-linear.js'
import { inWasmHeap, wasmHeap, wasmLinear } from './wasm-linear.js'
import { nativeKernels } from '../native.js'
import { threadsFor } from '../model.js'
import { llmWeights, type LlmWeights } from './weights.js'
import { planLlmShard, readLlmShard, type LlmShardRole } from './shard-load.js'
import { llmShardDims, llmUnits, unitColumns, wholeLlm, type LlmShard, type LlmShardDims } from './shard-plan.js'

/** A GGUF model read into this process's memory: weights kept in their file's types. */
export interface LoadedGguf {
  readonly path: string
  readonly sha256: string
  readonly file: GgufFile
  readonly config: LlmConfig
  /** the part of every layer these weights hold: the whole model, or a ring member's shard */
  readonly shard: LlmShardDims
  readonly weights: LlmWeights
  readonly tokenizer: TextTokenizer
  readonly loadMs: number
}

/** Threads the kernels run on: only the native ones use more than one (and only on a model big enough to pay). */
export const llmThreads = (engine: LlmEngineName, config: LlmConfig, asked: number): number =>
  engine === 'native' ? threadsFor(config.dim, config.hidden, asked) : 1

/**
 * Read a GGUF file whole into one buffer (on huge pages: this VM drops idle page cache, and a
 * token streams every weight once), hashing it on the way. The header is checked first, so a bad
 * file fails before its size is allocated. For the wasm engine the buffer is a WebAssembly memory
 * (its kernels read weights only there); any other engine reads plain memory.
 */
export async function loadGgufWeights (file: GgufFile, onProgress?: LoadProgress, engine?: LlmEngineName): Promise<LoadedGguf> {
  const start = performance.now()
  const config = llmConfig(file)
  const tensors = modelTensors(file, config)
  const tokenizer = ggufTokenizer(file.metadata, file.path)
  const { bytes, sha256 } = await readWholeFile(file.path, file.fileBytes, engine === 'wasm' ? wasmHeap() : allocateHeap, onProgress)
  const weights = llmWeights(tensors, bytes.subarray(file.dataOffset))
  return { path: file.path, sha256, file, config, shard: llmShardDims(config, wholeLlm(config)), weights, tokenizer, loadMs: performance.now() - start }
}

/**
 * A ring member's shard of a GGUF file (`sha256`: the file's, hashed when the agent started):
 * only its slices of the layers and classifier rows are read, and the embedding only for a leader, so
 * memory per member falls as the ring grows.
 */
export async function loadGgufShard (file: GgufFile, sha256: string, shard: LlmShard, role: LlmShardRole, engine: LlmEngineName, onProgress?: LoadProgress): Promise<LoadedGguf> {
  const start = performance.now()
  const config = llmConfig(file)
  const tensors = modelTensors(file, config)
  const tokenizer = ggufTokenizer(file.metadata, file.path)
  const dims = llmShardDims(config, shard)
  const weights = await readLlmShard(file, planLlmShard(tensors, dims, role, file.dataOffset), engine === 'wasm' ? wasmHeap() : allocateHeap, onProgress)
  return { path: file.path, sha256, file, config, shard: dims, weights, tokenizer, loadMs: performance.now() - start }
}

/** A GGUF model from its path: header, tokenizer and shapes checked, then the weights read (where `engine` needs them). */
export async function loadGguf (path: string, onProgress?: LoadProgress, engine?: LlmEngineName): Promise<LoadedGguf> {
  return await loadGgufWeights(await readGguf(path), onProgress, engine)
}

/** Weights repacked for the native kernels, by the LoadedGguf they were: repacked once, and then unreadable by the ts and wasm kernels */
const packedWeights = new WeakMap<LoadedGguf, LlmWeights>()

/**
 * The layers' matrices and the classifier repacked in place; not tokEmb, whose rows are looked up,
 * nor a tied classifier: one device's is a view of tokEmb, so a member's rows of it stay unpacked
 * too and give the logits one device's do, bit for bit.
 */
function packWeights (g: LoadedGguf): LlmWeights {
  const w = g.weights
  const layers = w.layers.map((l) => ({
    ...l,
    wq: packForNative(l.wq), wk: packForNative(l.wk), wv: packForNative(l.wv), wo: packForNative(l.wo),
    gate: packForNative(l.gate), up: packForNative(l.up), down: packForNative(l.down)
  }))
  return { ...w, layers, output: g.config.tiedClassifier ? w.output : packForNative(w.output) }
}

const anyPacked = (w: LlmWeights | undefined): boolean =>
  w !== undefined && (w.output.packed === true || w.layers.some((l) => [l.wq, l.wk, l.wv, l.wo, l.gate, l.up, l.down].some((m) => m.packed === true)))

export function llmModel (g: LoadedGguf, engine: LlmEngineName, threads: number): LlmModel {
  if (engine !== 'native' && anyPacked(packedWeights.get(g))) throw new Error(`--engine ${engine}: ${g.path}'s weights were repacked for the native kernels; load it again for engine '${engine}'`)
  // the units a ring splits the model in, also on one device: its sums are then the ring's
  const units = unitColumns(g.config, llmUnits(g.config, g.weights))
  if (engine === 'ts') return { config: g.config, shard: g.shard, weights: g.weights, linear: tsLinear(), units }
  // attention and SwiGLU stay in TypeScript (forward.ts): the matrix products are the time
  if (engine === 'wasm') {
    if (!inWasmHeap(g.weights.layers[0].down.bytes)) throw new Error(`--engine wasm: ${g.path} was loaded for another engine; load it with engine 'wasm' so its weights are in WebAssembly memory`)
    return { config: g.config, shard: g.shard, weights: g.weights, linear: wasmLinear(), units }
  }
  const linear = nativeLinear(threads)
  const k = nativeKernels()
  if (typeof linear === 'string' || typeof k === 'string') throw new InferenceSettingError(`--engine native: ${typeof k === 'string' ? k : String(linear)}`)
  const weights = packedWeights.get(g) ?? packWeights(g)
  packedWeights.set(g, weights)
  return {
    config: g.config,
    shard: g.shard,
    weights,
    linear,
    units,
    // a 512-token prompt's attention is hundreds of millions of multiply-adds: C, heads across the threads
    attend: (att, scores, q, kc, vc, nHeads, hs, kvDim, kvMul, positions, pos0, nTokens, headOffset) => { k.attend(att, scores, q, kc, vc, nHeads, hs, kvDim, kvMul, positions, pos0, nTokens, headOffset, threads) },
    swiglu: k.swiglu
  }
}
