import { fileURLToPath } from 'node:url'
import { UsageError } from '../errors.js'
import { readCheckpointHeader } from './checkpoint.js'
import type { ModelConfig } from './config.js'
import { hashFile, type LoadProgress } from './files.js'
import { llmConfig, modelTensors, type LlmConfig } from './gguf/architecture.js'
import { isGgufFile, readGguf } from './gguf/reader.js'
import { modelIdentity, type ModelIdentity } from './identity.js'
import { llmUnits, type LlmUnits } from './llm/shard-plan.js'
import { ggufTokenizer } from './text/tokenizer.js'
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

/**
 * A model a member serves: its files, checked, and their identity (what heartbeats announce). A
 * GGUF file carries its tokenizer, so its identity covers the one file (tokenizerPath is the file).
 */
export type ServedModel = ServedLlama2c | ServedGguf

export interface ServedLlama2c extends ModelFiles {
  readonly format: 'llama2c'
  readonly config: ModelConfig
  readonly identity: ModelIdentity
}

export interface ServedGguf extends ModelFiles {
  readonly format: 'gguf'
  readonly config: LlmConfig
  /** how its layers split across a ring (from the tensors' block types) */
  readonly units: LlmUnits
  readonly identity: ModelIdentity
}

type Checked = { format: 'llama2c', config: ModelConfig, tokenizerSha256: string } | { format: 'gguf', config: LlmConfig, units: LlmUnits }

/**
 * Check a model's files without reading the weights: a GGUF file's header, shapes and tokenizer;
 * a llama2.c checkpoint's header against its size, and the tokenizer against the model's
 * vocabulary. Throws a one-line error naming the file.
 */
export async function checkModelFiles (files: ModelFiles): Promise<Checked> {
  if (await isGgufFile(files.checkpointPath)) {
    if (files.tokenizerPath !== BUNDLED_MODEL.tokenizerPath) throw new UsageError(`--tokenizer does not apply to GGUF models: ${files.checkpointPath} carries its own tokenizer`)
    const f = await readGguf(files.checkpointPath)
    const config = llmConfig(f)
    const units = llmUnits(config, modelTensors(f, config))
    ggufTokenizer(f.metadata, files.checkpointPath)
    return { format: 'gguf', config, units }
  }
  const { config } = await readCheckpointHeader(files.checkpointPath)
  const tokenizer = await loadTokenizer(files.tokenizerPath, config.vocabSize)
  return { format: 'llama2c', config, tokenizerSha256: tokenizer.sha256 }
}

/** Check the files, then hash the checkpoint (streamed: memory stays flat whatever its size). */
export async function identifyModel (files: ModelFiles, onProgress?: LoadProgress): Promise<ServedModel> {
  const checked = await checkModelFiles(files)
  const checkpointSha256 = await hashFile(files.checkpointPath, onProgress)
  if (checked.format === 'gguf') {
    return { format: 'gguf', checkpointPath: files.checkpointPath, tokenizerPath: files.checkpointPath, config: checked.config, units: checked.units, identity: modelIdentity(checkpointSha256, checkpointSha256) }
  }
  return { ...files, format: 'llama2c', config: checked.config, identity: modelIdentity(checkpointSha256, checked.tokenizerSha256) }
}
