// Build native/kernels.c (the C engine) with node-gyp and this machine's compiler, as part of
// `npm run build`. Best effort: without a compiler the build goes on, and `--engine auto` runs
// the WebAssembly engine instead (src/inference/native.ts says why when asked for native).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'native')

/** node-gyp: the one npm runs scripts with (npm_config_node_gyp), else npm's own copy next to this node. */
function nodeGyp () {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp
  try {
    return createRequire(path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'package.json')).resolve('node-gyp/bin/node-gyp.js')
  } catch {
    return undefined
  }
}

// Node's own headers when they are installed next to it, rather than a download (npm passes its nodedir setting itself)
const prefix = path.join(path.dirname(process.execPath), '..')
const nodedir = !process.env.npm_config_nodedir && existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : []
const gyp = nodeGyp()
const result = gyp === undefined ? undefined : spawnSync(process.execPath, [gyp, 'rebuild', ...nodedir], { cwd: dir, encoding: 'utf8' })
if (result?.status === 0) {
  console.log('native kernels built (native/build/Release/mesh_kernels.node)')
} else {
  const why = gyp === undefined ? 'node-gyp not found' : (result.stderr.split('\n').find((l) => /error/i.test(l)) ?? `node-gyp exited with ${result.status}`)
  console.warn(`native kernels not built (${why.trim()}); mesh will use its WebAssembly engine`)
}
