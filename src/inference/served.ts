import { fileURLToPath } from 'node:url'
import { readCheckpointHeader } from './checkpoint.js'
import type { ModelConfig } from './config.js'
import { hashFile, type LoadProgress } from './files.js'
import { modelIdentity, type ModelIdentity } from './identity.js'
import { loadTokenizer } from './tokenizer.js'

/** The files of the model a member serves. */
export interface ModelFiles {
  readonly checkpointPath: string
  readonly tokenizerPath: string
}

/** The model bundled with mesh (stories260K), served when no other is chosen. */
export const BUNDLED_MODEL: ModelFiles = {
  checkpointPath: fileURLToPath(new URL('../../models/stories260K/stories260K.bin', import.meta.url)),
  tokenizerPath: fileURLToPath(new URL('../../models/stories260K/tok512.bin', import.meta.url))
}

/** A model a member serves: its files, checked, and their identity (what heartbeats announce). */
export interface ServedModel extends ModelFiles {
  readonly config: ModelConfig
  readonly identity: ModelIdentity
}

/**
 * Check a model's files without reading the weights: the checkpoint's header against its size,
 * and the tokenizer against the model's vocabulary. Throws a one-line error naming the file.
 */
export async function checkModelFiles (files: ModelFiles): Promise<{ config: ModelConfig, tokenizerSha256: string }> {
  const { config } = await readCheckpointHeader(files.checkpointPath)
  const tokenizer = await loadTokenizer(files.tokenizerPath, config.vocabSize)
  return { config, tokenizerSha256: tokenizer.sha256 }
}

/** Check the files, then hash the checkpoint (streamed: memory stays flat whatever its size). */
export async function identifyModel (files: ModelFiles, onProgress?: LoadProgress): Promise<ServedModel> {
  const { config, tokenizerSha256 } = await checkModelFiles(files)
  const checkpointSha256 = await hashFile(files.checkpointPath, onProgress)
  return { ...files, config, identity: modelIdentity(checkpointSha256, tokenizerSha256) }
}
