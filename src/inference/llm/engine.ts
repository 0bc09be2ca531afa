import { nativeKernels } from '../native.js'

/**
 * Kernels for GGUF weights: native C (integer SIMD on 8-bit activations), WebAssembly SIMD (where
 * C is not built) or the TypeScript reference.
 */
export type LlmEngineName = 'native' | 'wasm' | 'ts'

/** The kernels when none is asked for: C where the addon was built, else WebAssembly SIMD. */
export const defaultLlmEngine = (): LlmEngineName => typeof nativeKernels() !== 'string' ? 'native' : 'wasm'
