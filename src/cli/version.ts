import fs from 'node:fs'
import { fileURLToPath } from 'node:url'

/**
 * mesh's version, from its package.json: two levels up from this module in src/cli, dist/cli and
 * the bundle in dist/bundle alike. (yargs' own guess looks next to its node_modules, which a
 * bundled yargs no longer has.)
 */
export function meshVersion (): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }
  return String(pkg.version)
}

/** The package root of this mesh (package.json, dist/, models/): what `mesh remote provision` copies. */
export function packageRoot (): string {
  return fileURLToPath(new URL('../../', import.meta.url))
}
