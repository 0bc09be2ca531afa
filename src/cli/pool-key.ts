/** `mesh pool-key create|list|revoke`: pre-authorised join keys of a pool this device administers. */
import type { Argv, CommandModule } from 'yargs'
import { adminPool, createPoolKey, revokePoolKey } from '../pool/admin.js'
import { DEFAULT_POOL_KEY_TTL_MS, parseKeyTtl, poolKeyId, poolKeyState, type PoolKeyEntry } from '../pool/pool-keys.js'
import { shortPoolId } from '../pool/pool-id.js'
import { UsageError } from '../errors.js'
import { commandGroup, handler, optionalString, requiredString } from './args.js'
import type { MeshCommand } from './commands.js'
import type { CliIO, GlobalArgs } from '../process/io.js'

const poolIdOption = { type: 'string', describe: 'the pool (needed only if this device administers several)' } as const

/** What `list` and `--json` show of a key: never the key, which only `create` prints. */
export function poolKeyJson (e: PoolKeyEntry, now: number): Record<string, unknown> {
  return {
    id: poolKeyId(e),
    name: e.name,
    reusable: e.reusable,
    state: poolKeyState(e, now),
    createdAt: new Date(e.createdAt).toISOString(),
    expiresAt: new Date(e.expiresAt).toISOString(),
    revokedAt: e.revokedAt === null ? null : new Date(e.revokedAt).toISOString(),
    uses: e.uses.map(u => ({ nodeId: u.nodeId, at: new Date(u.at).toISOString() }))
  }
}

export const poolKeyCommand: MeshCommand = (io) => commandGroup('pool-key', 'pre-authorised join keys: a device that joins with one (pool-join --token=KEY) is signed at once; only their hashes are kept', [createCommand(io), listCommand(io), revokeCommand(io)])

const createCommand = (io: CliIO): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'create',
  describe: 'make a key and print it once (the running agent honours it at once)',
  builder: (s: Argv<GlobalArgs>) => s
    .option('pool-id', poolIdOption)
    .option('reusable', { type: 'boolean', default: false, describe: 'admit any number of devices until it expires (default: the first device spends it)' })
    .option('expires', { type: 'string', default: `${DEFAULT_POOL_KEY_TTL_MS / 3600_000}h`, describe: 'how long it is valid: 90m, 24h, 7d (at most 30d)' })
    .option('name', { type: 'string', default: '', describe: 'a name to list and revoke it by' }),
  handler: handler<{ poolId?: unknown, reusable: unknown, expires: unknown, name: unknown }>((a) => {
    const ttlMs = parseKeyTtl(requiredString(a.expires, 'expires'))
    const { poolId, key, entry } = createPoolKey(a.home, {
      poolId: optionalString(a.poolId, 'pool-id'), name: String(a.name), reusable: a.reusable === true, ttlMs, now: Date.now()
    })
    if (a.json) { io.out(JSON.stringify({ key, poolId, ...poolKeyJson(entry, entry.createdAt) })); return }
    io.out(key)
    io.err(`Pool key ${poolKeyId(entry)} for pool ${shortPoolId(poolId)} (${entry.reusable ? 'reusable' : 'single-use'}, valid until ${new Date(entry.expiresAt).toISOString()}); it is shown only now. On the new device: mesh pool-join … --token=KEY`)
  })
})

const listCommand = (io: CliIO): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'list',
  describe: 'the keys: id, state (usable, spent, expired, revoked), expiry, the nodes that used them',
  builder: (s: Argv<GlobalArgs>) => s.option('pool-id', poolIdOption),
  handler: handler<{ poolId?: unknown }>((a) => {
    const pool = adminPool(a.home, optionalString(a.poolId, 'pool-id'))
    const now = Date.now()
    if (a.json) { io.out(JSON.stringify({ poolId: pool.poolId, keys: pool.poolKeys.map(k => poolKeyJson(k, now)) })); return }
    if (pool.poolKeys.length === 0) { io.out(`no pool keys in pool ${shortPoolId(pool.poolId)} (mesh pool-key create makes one)`); return }
    for (const k of pool.poolKeys) {
      const uses = k.uses.map(u => u.nodeId).join(',')
      io.out([poolKeyId(k), poolKeyState(k, now).padEnd(7), k.reusable ? 'reusable  ' : 'single-use', new Date(k.expiresAt).toISOString(), k.name, uses].filter(x => x !== '').join('  '))
    }
  })
})

const revokeCommand = (io: CliIO): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'revoke [key]',
  describe: 'make a key unusable (devices it admitted stay members; revoke those with mesh pool-revoke)',
  builder: (s: Argv<GlobalArgs>) => s
    .positional('key', { type: 'string', describe: 'the id (mesh pool-key list), the name, or the key itself' })
    .option('pool-id', poolIdOption),
  handler: handler<{ key?: unknown, poolId?: unknown }>((a) => {
    if (a.key === undefined || a.key === '') throw new UsageError('missing KEY: the id `mesh pool-key list` shows, the name, or the key; see --help')
    const which = String(a.key)
    const { poolId, entry } = revokePoolKey(a.home, optionalString(a.poolId, 'pool-id'), which, Date.now())
    if (a.json) { io.out(JSON.stringify({ poolId, ...poolKeyJson(entry, Date.now()) })); return }
    io.out(`revoked pool key ${poolKeyId(entry)}${entry.name === '' ? '' : ` (${entry.name})`} of pool ${shortPoolId(poolId)}`)
  })
})
