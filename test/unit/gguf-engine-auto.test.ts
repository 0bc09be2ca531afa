import { describe, expect, it, vi } from 'vitest'
import { ggufEngine } from '../../src/cli/inference-gguf.js'

// a machine where no C compiler built the native kernels
vi.mock('../../src/inference/native.js', () => ({ nativeKernels: () => 'the native kernels are not built (test)' }))

describe('--engine for GGUF models without the native kernels', () => {
  it('auto runs the WebAssembly kernels and says so on stderr; wasm and ts are taken as asked; others are refused', () => {
    const err: string[] = []
    const io = { out: () => {}, err: (t: string) => { err.push(t) }, isTTY: false }
    expect(ggufEngine(undefined, io)).toBe('wasm')
    expect(ggufEngine('auto', io)).toBe('wasm')
    expect(err).toHaveLength(2)
    expect(err[0]).toMatch(/native kernels are not built.*WebAssembly kernels/)
    expect(ggufEngine('wasm', io)).toBe('wasm')
    expect(ggufEngine('ts', io)).toBe('ts')
    expect(() => ggufEngine('onnx', io)).toThrow(/use native \(C kernels\), wasm \(WebAssembly SIMD\) or ts/)
  })
})
