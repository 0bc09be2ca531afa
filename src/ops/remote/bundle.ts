/**
 * The self-contained bundle provisioning copies to a box that may have no internet: the built CLI and
 * agent (esbuild's dist/bundle, which needs no node_modules), the WebAssembly kernels, the bundled
 * stories260K model and package.json (version, ESM). Not the native kernels: they are compiled for
 * this CPU (-march=native) and the box's may differ; it runs the WebAssembly ones.
 *
 * The build id is the sha256 of every file's path and bytes, so the same tree gives the same id
 * (the box skips the install) whatever tar does with times. The tarball is made once per build id
 * under MESH_HOME/remote/ and checked on the box by its own sha256.
 *
 * Exports: BUNDLE_PATHS, Bundle, buildId, makeBundle.
 */
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { MeshError } from '../../errors.js'

export const BUNDLE_PATHS = ['package.json', 'dist/cli/mesh.js', 'dist/bundle', 'dist/wasm', 'models/stories260K'] as const

export interface Bundle {
  version: string
  /** 64 hex */
  build: string
  /** the tarball and its sha256 */
  file: string
  sha256: string
  bytes: number
  /** where it unpacks on the box, under ~/.local/lib/mesh */
  dirName: string
}

/** This mesh is not built (or not completely): nothing to copy. */
export class BundleMissingError extends MeshError {}

function filesUnder (root: string, rel: string): string[] {
  const abs = path.join(root, rel)
  if (!fs.existsSync(abs)) throw new BundleMissingError(`${abs} is missing: this mesh is not built; run \`npm run build\` in ${root}`)
  if (!fs.statSync(abs).isDirectory()) return [rel]
  return fs.readdirSync(abs).sort().flatMap(n => filesUnder(root, path.posix.join(rel, n)))
}

/** sha256 over (path, size, bytes) of every bundled file, in sorted order. */
export function buildId (root: string): { build: string, files: string[] } {
  const files = BUNDLE_PATHS.flatMap(p => filesUnder(root, p))
  const h = crypto.createHash('sha256')
  for (const f of files) {
    const bytes = fs.readFileSync(path.join(root, f))
    h.update(`${f}\0${bytes.length}\0`).update(bytes)
  }
  return { build: h.digest('hex'), files }
}

const Version = z.object({ version: z.string().regex(/^[0-9A-Za-z.+-]+$/) })

/** The bundle of the mesh installed at `root`, made under `cacheDir` unless it is there already. */
export function makeBundle (root: string, cacheDir: string): Bundle {
  const pkg = Version.safeParse(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')))
  if (!pkg.success) throw new BundleMissingError(`${path.join(root, 'package.json')} has no usable version`)
  const { build } = buildId(root)
  const dirName = `${pkg.data.version}-${build.slice(0, 12)}`
  const file = path.join(cacheDir, `mesh-${dirName}.tgz`)
  if (!fs.existsSync(file)) {
    fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 })
    const tmp = `${file}.${process.pid}.tmp`
    try {
      execFileSync('tar', ['-czf', tmp, '-C', root, ...BUNDLE_PATHS], { stdio: ['ignore', 'ignore', 'pipe'] })
      fs.renameSync(tmp, file)
    } catch (err) {
      fs.rmSync(tmp, { force: true })
      throw new BundleMissingError(`could not pack ${root} with tar: ${String((err as { stderr?: unknown }).stderr ?? err).trim().split('\n')[0]}`)
    }
  }
  const bytes = fs.readFileSync(file)
  return { version: pkg.data.version, build, file, sha256: crypto.createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length, dirName }
}
