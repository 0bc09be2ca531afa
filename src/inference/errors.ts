import { MeshError, UsageError } from '../errors.js'

/** A model or tokenizer path that does not exist, is a directory, or cannot be read. */
export class ModelFileError extends MeshError {}

/** A checkpoint whose header or size does not describe a llama2.c model this engine can run. */
export class CheckpointFormatError extends MeshError {}

/**
 * Names and values quoted from a hostile file may hold newlines, escapes or megabytes: keep the
 * message one printable line of bounded length.
 */
const oneLine = (message: string): string => {
  // eslint-disable-next-line no-control-regex
  const flat = message.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
  return flat.length > 400 ? `${flat.slice(0, 400)}…` : flat
}

/** A GGUF file whose container, metadata or tensors mesh cannot read (named in the message). */
export class GgufFormatError extends MeshError {
  constructor (message: string) { super(oneLine(message)) }
}

/** A GGUF file that is well formed but describes a model mesh cannot run (architecture, shapes). */
export class UnsupportedModelError extends MeshError {
  constructor (message: string) { super(oneLine(message)) }
}

/** A tokenizer.bin that is malformed or does not belong to the model. */
export class TokenizerFormatError extends MeshError {}

/** A prompt that does not fit in the model's context. */
export class PromptTooLongError extends UsageError {}

/** A generation or synth setting out of range (temperature, top-p, max tokens, shape). */
export class InferenceSettingError extends UsageError {}

/** A shard that does not fit the model it is cut from (a ring/model mismatch). */
export class ShardRangeError extends MeshError {}
