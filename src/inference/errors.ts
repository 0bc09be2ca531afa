import { MeshError, UsageError } from '../errors.js'

/** A model or tokenizer path that does not exist, is a directory, or cannot be read. */
export class ModelFileError extends MeshError {}

/** A checkpoint whose header or size does not describe a llama2.c model this engine can run. */
export class CheckpointFormatError extends MeshError {}

/** A tokenizer.bin that is malformed or does not belong to the model. */
export class TokenizerFormatError extends MeshError {}

/** A prompt that does not fit in the model's context. */
export class PromptTooLongError extends UsageError {}

/** A generation or synth setting out of range (temperature, top-p, max tokens, shape). */
export class InferenceSettingError extends UsageError {}

/** A shard that does not fit the model it is cut from (a ring/model mismatch). */
export class ShardRangeError extends MeshError {}
