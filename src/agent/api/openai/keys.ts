import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { CorruptFileError, readJsonFile, writeJsonAtomic } from '../../../atomic-file.js'
import { UsageError } from '../../../errors.js'

/*
 * API keys of the OpenAI-compatible gateway, in MESH_HOME/api-keys.json (0600). Only a key's
 * SHA-256 is stored: a key is 32 random bytes, so a fast hash is as good as a slow one, and a
 * leaked file opens nothing. `mesh api-key create` prints the key once.
 */

/** No key with that id or name (`mesh api-key revoke`). */
export class ApiKeyNotFoundError extends UsageError {}

export interface ApiKeyRecord {
  readonly id: string
  readonly name: string
  /** hex SHA-256 of the key */
  readonly sha256: string
  readonly createdAt: string
}

const fileSchema = z.strictObject({
  version: z.literal(1),
  keys: z.array(z.strictObject({
    id: z.string().regex(/^[0-9a-f]{8}$/),
    name: z.string().max(100),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    createdAt: z.string()
  }))
})

export const apiKeysFile = (home: string): string => path.join(home, 'api-keys.json')

/** The keys on file; none when there is no file. CorruptFileError names a bad one. */
export function readApiKeys (home: string): ApiKeyRecord[] {
  const file = apiKeysFile(home)
  const raw = readJsonFile(file)
  if (raw === undefined) return []
  const parsed = fileSchema.safeParse(raw)
  if (!parsed.success) throw new CorruptFileError(file, parsed.error.issues[0]?.message ?? 'invalid')
  return parsed.data.keys
}

function writeApiKeys (home: string, keys: readonly ApiKeyRecord[]): void {
  fs.mkdirSync(home, { recursive: true, mode: 0o700 })
  writeJsonAtomic(apiKeysFile(home), { version: 1, keys }, 0o600)
}

const hashKey = (key: string): Buffer => crypto.createHash('sha256').update(key, 'utf8').digest()

/** A new key: stored as its hash; the key itself is returned once, for the user to copy. */
export function createApiKey (home: string, name: string, now: Date = new Date()): { key: string, record: ApiKeyRecord } {
  if (name.length > 100) throw new UsageError('an API key name is at most 100 characters')
  const keys = readApiKeys(home)
  if (name !== '' && keys.some((k) => k.name === name)) throw new UsageError(`an API key named ${JSON.stringify(name)} exists; revoke it first or choose another --name`)
  const key = `mesh-${crypto.randomBytes(32).toString('base64url')}`
  let id: string
  do id = crypto.randomBytes(4).toString('hex'); while (keys.some((k) => k.id === id))
  const record: ApiKeyRecord = { id, name, sha256: hashKey(key).toString('hex'), createdAt: now.toISOString() }
  writeApiKeys(home, [...keys, record])
  return { key, record }
}

/** Remove the key with this id or name; the agent stops accepting it within a second. */
export function revokeApiKey (home: string, idOrName: string): ApiKeyRecord {
  const keys = readApiKeys(home)
  const hit = keys.find((k) => k.id === idOrName) ?? keys.find((k) => k.name === idOrName && k.name !== '')
  if (hit === undefined) throw new ApiKeyNotFoundError(`no API key with id or name ${JSON.stringify(idOrName)}; see mesh api-key list`)
  writeApiKeys(home, keys.filter((k) => k !== hit))
  return hit
}

/**
 * The gateway's view of the key file, re-read when it changes (create and revoke take effect
 * without a restart). `check` hashes what the client sent and compares it with every stored hash
 * in constant time, so neither the timing nor the order of the keys says anything.
 */
export class ApiKeyRing {
  private hashes: Buffer[] = []
  private seen = ''
  private checkedAt = 0
  constructor (private readonly home: string, private readonly recheckMs = 1000, private readonly now: () => number = Date.now) {
    this.refresh(true)
  }

  /** whether any key exists: without one, a loopback gateway is open */
  get required (): boolean { this.refresh(); return this.hashes.length > 0 }

  check (presented: string): boolean {
    this.refresh()
    const h = hashKey(presented)
    let ok = false
    for (const k of this.hashes) ok = crypto.timingSafeEqual(h, k) || ok
    return ok
  }

  private refresh (force = false): void {
    const t = this.now()
    if (!force && t - this.checkedAt < this.recheckMs) return
    this.checkedAt = t
    let stamp = 'none'
    try { const st = fs.statSync(apiKeysFile(this.home)); stamp = `${st.mtimeMs}:${st.size}:${st.ino}` } catch { /* no file: no keys */ }
    if (stamp === this.seen) return
    // a file that turned bad keeps the last good keys (and the agent logs nothing secret)
    try { this.hashes = readApiKeys(this.home).map((k) => Buffer.from(k.sha256, 'hex')); this.seen = stamp } catch (err) {
      if (force) throw err
    }
  }
}

/** A gateway reachable from the network with no key to ask for (mesh start --api 0.0.0.0:PORT). */
export class ApiKeyRequiredError extends UsageError {}

/** Refuse to serve the API beyond this machine while no key exists: anyone on the LAN could run jobs. */
export function checkApiExposure (home: string, host: string, loopback: boolean): void {
  if (loopback || readApiKeys(home).length > 0) return
  throw new ApiKeyRequiredError(`the API on ${host} would be open to the network: create a key first (mesh api-key create), or bind it to 127.0.0.1`)
}
