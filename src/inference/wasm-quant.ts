import { readFileSync } from 'node:fs'

// Built by scripts/build-wasm.mjs (AssemblyScript, wasm/quant.ts). The path climbs to the package
// root, so it means the same from src/ (tsx, vitest), dist/ and dist/bundle/ (scripts/bundle.mjs).
const QUANT_WASM = new URL('../../dist/wasm/quant.wasm', import.meta.url)
let compiled: WebAssembly.Module | string | undefined

/** The compiled GGUF matrix kernels (src/inference/llm/wasm-linear.ts runs them), or why they cannot be used. */
export function quantWasmModule (): WebAssembly.Module | string {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(readFileSync(QUANT_WASM))
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      compiled = e.code === 'ENOENT'
        ? 'the WebAssembly kernels are not built (dist/wasm/quant.wasm is missing); run `npm run build`'
        : `the WebAssembly kernels do not load here (${e.message.split('\n')[0]}); they need WebAssembly SIMD (Node 16.4 or later)`
    }
  }
  return compiled
}
