// Bundle the `mesh` CLI (dist/cli/main.js) and the detached agent (dist/agent/mesh-agent.js), both
// built by tsc, into dist/bundle/: mesh.js, mesh-agent.js and the chunks they share. The CLI's
// entry point (dist/cli/mesh.js) and `mesh start` run these files when they exist.
//
// Why: Node 20 resolves, reads and links every ES module on its own; the CLI imported ~380 of them
// (zod alone ~95) before running any command, the agent ~780. A few files load several times
// faster. Code splitting keeps what only some commands need (the agent itself, for
// `mesh start --foreground`) in chunks loaded when those commands run, and makes each module exist
// once per process even when the CLI and the agent code meet in it.
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
 * Our modules imported from dist/ at run time, not bundled: the inference code finds files next to
 * itself through import.meta.url (models, native kernels), and errors.js is shared with it, so
 * MeshError exists once and `instanceof MeshError` holds across the boundary.
 */
const KEEP_OUT = /[\\/]dist[\\/](inference[\\/]|errors\.js$)/

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
  external: ['onnxruntime-node', 'better-sqlite3'],
  // CommonJS packages inside an ES module bundle call require()
  banner: { js: "import { createRequire as __meshCreateRequire } from 'node:module'; const require = __meshCreateRequire(import.meta.url);" },
  plugins: [{
    name: 'keep-out',
    setup (b) {
      b.onResolve({ filter: /^\.\.?\// }, (args) => {
        const target = path.resolve(args.resolveDir, args.path)
        if (!KEEP_OUT.test(target)) return undefined
        let rel = path.relative(outdir, target).split(path.sep).join('/')
        if (!rel.startsWith('.')) rel = `./${rel}`
        return { path: rel, external: true }
      })
    }
  }]
})
