// Compile the WebAssembly kernels for GGUF weights (wasm/quant.ts, AssemblyScript) into
// dist/wasm/quant.wasm, as part of `npm run build`: what `--engine wasm` (and auto, where the
// native kernels are not built) runs. AssemblyScript is a devDependency, so this works offline
// after `npm ci`.
import asc from 'assemblyscript/asc'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = path.join(root, 'dist', 'wasm', 'quant.wasm')
mkdirSync(path.dirname(out), { recursive: true })

const { error, stderr } = await asc.main([
  path.join(root, 'wasm', 'quant.ts'),
  '--outFile', out,
  // speed over size, no bounds assertions (wasm-linear.ts checks every shape and view before a call)
  '-O3', '--noAssert', '--converge',
  '--enable', 'simd',
  // the JS side creates the memory, sized for the model, and reads the weights straight into it
  '--importMemory',
  // no allocator, no strings: the kernels only read and write memory the caller laid out
  '--runtime', 'stub',
  '--use', 'abort='
])
if (error) {
  console.error(stderr.toString())
  console.error(`wasm/quant.ts did not compile: ${error.message}`)
  process.exit(1)
}
console.log('wasm kernels built (dist/wasm/quant.wasm)')
