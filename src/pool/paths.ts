/**
 * Every path under MESH_HOME that the pool library owns, in one place.
 *
 * Exports: configFile, keysDir, deviceKeyFile, rootKeyFile, poolsDir, poolFile, listPoolIds.
 */
import fs from 'node:fs'
import path from 'node:path'
import { CorruptFileError } from '../atomic-file.js'

/** device config: network id, device name, node id */
export function configFile (home: string): string { return path.join(home, 'config.json') }
/** private keys, directory 0700, files 0600 */
export function keysDir (home: string): string { return path.join(home, 'keys') }
export function deviceKeyFile (home: string): string { return path.join(keysDir(home), 'device.key') }
/** a pool's root private key: only on the admin device that created the pool */
export function rootKeyFile (home: string, poolId: string): string { return path.join(keysDir(home), `pool-${poolId}.root.key`) }
export function poolsDir (home: string): string { return path.join(home, 'pools') }
/** one pool's record (store.ts) */
export function poolFile (home: string, poolId: string): string { return path.join(poolsDir(home), `${poolId}.json`) }

/** Pool ids with a record under pools/ (temp and lock files ignored); [] when there is no pools/ yet. */
export function listPoolIds (home: string): string[] {
  let names: string[]
  try {
    names = fs.readdirSync(poolsDir(home))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return []
    throw new CorruptFileError(poolsDir(home), `cannot list it: ${code ?? String(err)}`)
  }
  return names.filter(f => /^[0-9a-f]{64}\.json$/.test(f)).map(f => f.slice(0, 64)).sort()
}
