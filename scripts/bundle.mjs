// Bundle the `mesh` CLI (dist/cli/main.js) and the detached agent (dist/agent/mesh-agent.js), both
// built by tsc, into dist/bundle/: mesh.js, mesh-agent.js and the chunks they share. The CLI's
// entry point (dist/cli/mesh.js) and `mesh start` run these files when they exist.
//
// Why: Node 20 resolves, reads and links every ES module on its own; the CLI imported ~380 of them
// (zod alone ~95) before running any command, the agent ~780. A few files load several times
// faster. Code splitting keeps what only some commands need (the agent itself, for
// `mesh start --foreground`; the inference engines) in chunks loaded when those commands run, and
// makes each module exist once per process even when the CLI and the agent code meet in it, so
// `instanceof MeshError` holds everywhere.
import { build } from 'esbuild'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const dist = path.join(root, 'dist')
// one level under dist/, like dist/cli and dist/agent, so paths relative to import.meta.url
// ('../../models/…') mean the same in a bundled module
const outdir = path.join(dist, 'bundle')

/**
 * Our modules that find files through import.meta.url, checked by hand: each climbs to the package
 * root ('../../models/…', '../../native/build/…') or to dist/ ('../bundle/…'), which means the same
 * from dist/bundle/ as from its own directory one level under dist/. A path next to the module
 * ('./kernels.wasm') would not, so the build stops at any other module that uses import.meta.url:
 * check its paths and list it here (or load it from dist/ instead of bundling it).
 */
const FINDS_FILES = new Set(['agent/daemon.js', 'cli/bundled-model.js', 'cli/version.js', 'inference/native.js', 'inference/served.js', 'inference/wasm-quant.js'])

// chunk names carry a hash: drop the last build's rather than let them pile up
fs.rmSync(outdir, { recursive: true, force: true })

await build({
  entryPoints: [
    { in: path.join(dist, 'cli', 'main.js'), out: 'mesh' },
    { in: path.join(dist, 'agent', 'mesh-agent.js'), out: 'mesh-agent' }
  ],
  outdir,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // whitespace and syntax only: identifiers stay readable in stack traces
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  // packages with native addons or files of their own are loaded from node_modules
  external: ['onnxruntime-node', 'better-sqlite3', 'node-datachannel'],
  // CommonJS packages inside an ES module bundle call require()
  banner: { js: "import { createRequire as __meshCreateRequire } from 'node:module'; const require = __meshCreateRequire(import.meta.url);" },
  plugins: [{
    name: 'finds-files',
    setup (b) {
      b.onLoad({ filter: /\.js$/ }, (args) => {
        const rel = path.relative(dist, args.path).split(path.sep).join('/')
        if (rel.startsWith('..') || FINDS_FILES.has(rel)) return undefined
        if (!fs.readFileSync(args.path, 'utf8').includes('import.meta.url')) return undefined
        return { errors: [{ text: `dist/${rel} finds files through import.meta.url: check that its paths mean the same from dist/bundle/ and add it to FINDS_FILES in scripts/bundle.mjs` }] }
      })
    }
  }]
})
