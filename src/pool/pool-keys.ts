/**
 * Pre-authorised join keys (`mesh pool-key`): a secret the admin hands to one new device (or several,
 * when reusable), so that device's certificate request is signed at once, under any policy.
 *
 * The key is 32 random bytes used as an ed25519 seed. A request proves it by a signature of the key
 * over the same bytes the join token's HMAC covers (cert-request.ts, proof flag 2); the admin keeps
 * only SHA-256 of the key's public key, so its pool record can check proofs but never make one.
 * Text form: `mpk1_` + 43 base64url characters; the prefix tells it from a join token (43 characters)
 * and means it never starts with '-'.
 *
 * Everything here is pure (`now` is a parameter) apart from the random key in newPoolKey.
 *
 * Exports: POOL_KEY_PREFIX, PoolKeyEntry, PoolKeyRefusal, DEFAULT_POOL_KEY_TTL_MS, MAX_POOL_KEY_TTL_MS,
 * newPoolKey, isPoolKeyText, parsePoolKey, poolKeyPublicKey, poolKeyHash, poolKeyId, checkPoolKey,
 * spendPoolKey, poolKeyState, parseKeyTtl, prunePoolKeys.
 */
import crypto from 'node:crypto'
import { fromBase64Url, toBase64Url } from './encoding.js'
import { InvalidInputError } from './errors.js'
import { SEED_BYTES, publicKeyOf } from './keys.js'

export const POOL_KEY_PREFIX = 'mpk1_'

/** What the admin's pool record keeps of one key. */
export interface PoolKeyEntry {
  /** hex SHA-256("meshnet-pool-key-v1" ‖ the key's ed25519 public key) */
  readonly hash: string
  readonly name: string
  readonly reusable: boolean
  readonly createdAt: number
  readonly expiresAt: number
  /** ms, or null while usable */
  readonly revokedAt: number | null
  /** the nodes certified with it, oldest first */
  readonly uses: Array<{ nodeId: string, at: number }>
}

/** Why a key proof is refused; closed list, counted by the agent with the other refusals. */
export type PoolKeyRefusal = 'unknown-key' | 'expired-key' | 'spent-key' | 'revoked-key'

/** The default: a key made for one provisioning run lasts a day */
export const DEFAULT_POOL_KEY_TTL_MS = 24 * 3600_000
/** longer-lived keys are join tokens by another name: use the pool's join token instead */
export const MAX_POOL_KEY_TTL_MS = 30 * 24 * 3600_000
/** spent, expired or revoked keys stay listed this long after, then go at the next create */
const KEEP_DEAD_MS = 30 * 24 * 3600_000

export function newPoolKey (): string {
  return POOL_KEY_PREFIX + crypto.randomBytes(SEED_BYTES).toString('base64url')
}

export function isPoolKeyText (text: string): boolean { return text.trim().startsWith(POOL_KEY_PREFIX) }

/** The key's seed bytes; InvalidInputError if it is not what `mesh pool-key create` printed. */
export function parsePoolKey (text: string): Uint8Array {
  const t = text.trim()
  const seed = t.startsWith(POOL_KEY_PREFIX) ? fromBase64Url(t.slice(POOL_KEY_PREFIX.length)) : undefined
  if (seed === undefined || seed.length !== SEED_BYTES) {
    throw new InvalidInputError(`a pool key is ${POOL_KEY_PREFIX} and ${Math.ceil(SEED_BYTES * 4 / 3)} base64url characters, as \`mesh pool-key create\` prints it`)
  }
  return seed
}

export function poolKeyPublicKey (seed: Uint8Array): Uint8Array { return publicKeyOf(seed) }

export function poolKeyHash (publicKey: Uint8Array): string {
  return crypto.createHash('sha256').update('meshnet-pool-key-v1').update(publicKey).digest('hex')
}

/** The short id `pool-key list` shows and `revoke` takes: the hash's first 12 hex digits. */
export function poolKeyId (entry: Pick<PoolKeyEntry, 'hash'>): string { return entry.hash.slice(0, 12) }

/** The text form of a seed (tests and the CLI print keys this way). */
export function poolKeyText (seed: Uint8Array): string { return POOL_KEY_PREFIX + toBase64Url(seed) }

export type PoolKeyState = 'usable' | 'spent' | 'expired' | 'revoked'

/** A key's state at `now`, in the order a refusal names it: revoked, then expired, then spent. */
export function poolKeyState (e: PoolKeyEntry, now: number): PoolKeyState {
  if (e.revokedAt !== null) return 'revoked'
  if (now >= e.expiresAt) return 'expired'
  if (!e.reusable && e.uses.length > 0) return 'spent'
  return 'usable'
}

/**
 * May `nodeId` be certified with the key whose public key hashes to `hash`? The key is found by its
 * hash (never by a user-typed id); a single-use key is spent by its first node, which may still ask
 * again (its renewals need no key: it is a member by then).
 */
export function checkPoolKey (keys: readonly PoolKeyEntry[], hash: string, nodeId: string, now: number): PoolKeyEntry | PoolKeyRefusal {
  const e = keys.find(k => k.hash === hash)
  if (e === undefined) return 'unknown-key'
  const state = poolKeyState(e, now)
  if (state === 'spent' && e.uses.some(u => u.nodeId === nodeId)) return e
  if (state !== 'usable') return `${state}-key`
  return e
}

/** The key list after `nodeId` was certified with the key `hash`. */
export function spendPoolKey (keys: readonly PoolKeyEntry[], hash: string, nodeId: string, now: number): PoolKeyEntry[] {
  return keys.map(k => k.hash !== hash || k.uses.some(u => u.nodeId === nodeId) ? k : { ...k, uses: [...k.uses, { nodeId, at: now }] })
}

/** Drop keys that have been dead (spent, expired or revoked) for a month, so the record stays small. */
export function prunePoolKeys (keys: readonly PoolKeyEntry[], now: number): PoolKeyEntry[] {
  const diedAt = (k: PoolKeyEntry): number | undefined => {
    if (k.revokedAt !== null) return k.revokedAt
    if (now >= k.expiresAt) return k.expiresAt
    if (!k.reusable && k.uses.length > 0) return k.uses[0]?.at
    return undefined
  }
  return keys.filter(k => { const t = diedAt(k); return t === undefined || now - t < KEEP_DEAD_MS })
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 24 * 3600_000 }

/** `--expires` as typed: a whole number and one unit (90m, 24h, 7d), more than 0 and at most 30 days. */
export function parseKeyTtl (text: string): number {
  const m = /^([1-9][0-9]{0,6})([smhd])$/.exec(text.trim())
  const ms = m === null ? NaN : Number(m[1]) * (UNIT_MS[m[2] as string] as number)
  if (!Number.isFinite(ms) || ms > MAX_POOL_KEY_TTL_MS) {
    throw new InvalidInputError(`--expires must be a duration like 90m, 24h or 7d, at most 30d (got ${JSON.stringify(text.slice(0, 20))})`)
  }
  return ms
}
