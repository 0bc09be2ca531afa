import { createHash } from 'node:crypto'
import { loadCheckpoint, type Checkpoint } from './checkpoint.js'
import type { LoadProgress } from './files.js'
import type { ShardedModel } from './forward.js'
import { tsMatmuls } from './matmuls.js'
import { wholeModel, type Shard } from './shard.js'
import { loadTokenizer, type Tokenizer } from './tokenizer.js'

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

export interface LoadedModel {
  readonly checkpoint: Checkpoint
  readonly tokenizer: Tokenizer
  readonly identity: ModelIdentity
  readonly loadMs: number
}

export interface LoadModelOptions {
  readonly checkpointPath: string
  readonly tokenizerPath: string
  readonly onProgress?: LoadProgress
}

/** Load and cross-check a checkpoint and its tokenizer (the tokenizer must have the model's vocabulary). */
export async function loadModel (opts: LoadModelOptions): Promise<LoadedModel> {
  const start = performance.now()
  const checkpoint = await loadCheckpoint(opts.checkpointPath, { onProgress: opts.onProgress })
  const tokenizer = await loadTokenizer(opts.tokenizerPath, checkpoint.config.vocabSize)
  return { checkpoint, tokenizer, identity: modelIdentity(checkpoint.sha256, tokenizer.sha256), loadMs: performance.now() - start }
}

/** The whole model (or one shard of it) with plain TypeScript kernels. */
export function shardedModel (m: LoadedModel, shard: Shard = wholeModel(m.checkpoint.config)): ShardedModel {
  const { config, weights } = m.checkpoint
  return { config, weights, shard, matmuls: tsMatmuls(config, weights, shard) }
}
