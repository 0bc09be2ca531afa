import fs from 'node:fs'

/**
 * mesh's version, from its package.json: two levels up from this module in src/cli, dist/cli and
 * the bundle in dist/bundle alike. (yargs' own guess looks next to its node_modules, which a
 * bundled yargs no longer has.)
 */
export function meshVersion (): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }
  return String(pkg.version)
}
