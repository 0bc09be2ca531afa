// Bundle the detached agent (dist/agent/mesh-agent.js, built by tsc) into one file,
// dist/agent/mesh-agent.bundle.js, which `mesh start` runs when it exists.
//
// Why: the agent imports about 780 ES modules (libp2p, gossipsub, noise, zod, pino…), and Node 20
// resolves, reads and links each one; on a busy machine that was most of the time from `mesh start`
// to a running agent. One file loads several times faster. Code that finds files next to itself
// through import.meta.url (the inference engines, native addons) stays outside the bundle and is
// imported from dist/ and node_modules as usual.
import { build } from 'esbuild'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const dist = path.join(root, 'dist')
const outfile = path.join(dist, 'agent', 'mesh-agent.bundle.js')

/**
 * Our modules imported from dist/ at run time, not bundled: those that find files through
 * import.meta.url (inference), and every module they share with the agent (pool, errors,
 * atomic-file), so each exists once and `instanceof MeshError` holds across the boundary.
 */
const KEEP_OUT = /[\\/]dist[\\/]((inference|control-plane|relay|pool)[\\/]|errors\.js$|atomic-file\.js$)/

await build({
  entryPoints: [path.join(dist, 'agent', 'mesh-agent.js')],
  outfile,
  bundle: true,
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
        let rel = path.relative(path.dirname(outfile), target).split(path.sep).join('/')
        if (!rel.startsWith('.')) rel = `./${rel}`
        return { path: rel, external: true }
      })
    }
  }]
})
