import fs from 'node:fs'
import { parseHeader } from '../inference/config.js'
import { GGUF_MAGIC } from '../inference/gguf/reader.js'
import type { ServedModel } from '../inference/served.js'
import { fetchedModelPath, type ServeConfig } from './config.js'

export type ModelFormat = ServedModel['format']
const FORMATS: readonly ModelFormat[] = ['llama2c', 'gguf']

/**
 * The checkpoint file to serve: the one named, else (given a sha256) one fetched earlier, in
 * either format; null when it must come from the pool. Without a sha256 it is the one named,
 * there or not.
 */
export function localCheckpoint (m: ServeConfig, home: string): string | null {
  if (m.sha256 === undefined || fs.existsSync(m.checkpointPath)) return m.checkpointPath
  const sha256 = m.sha256
  return FORMATS.map((f) => fetchedModelPath(home, sha256, f)).find((p) => fs.existsSync(p)) ?? null
}

/** bytes a fetch collects before it judges the file's head: a llama2.c v1 header, GGUF's magic and version */
export const MODEL_HEAD_BYTES = 256

/**
 * Why the first bytes of a file sent as a model of `format` cannot be one (null if they can), so
 * a member that streams something else is cut off at its first chunk instead of after the whole
 * announced size. The full check (identifyModel) runs once the file is here and its hash matches.
 */
export function headProblem (format: ModelFormat, head: Uint8Array): string | null {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength)
  const gguf = head.byteLength >= 4 && view.getUint32(0, true) === GGUF_MAGIC
  if (format === 'gguf') {
    if (!gguf) return 'it does not start with the GGUF magic'
    const version = head.byteLength >= 8 ? view.getUint32(4, true) : 0
    return version === 2 || version === 3 ? null : `GGUF version ${version} (only 2 and 3 are read)`
  }
  if (gguf) return 'it is a GGUF file, announced as a llama2.c checkpoint'
  try {
    parseHeader(head, 'the file')
    return null
  } catch (err) {
    return err instanceof Error ? err.message : String(err)
  }
}
