/**
 * Pool IDs: hex(SHA-256("meshnet-pool-v1" ‖ root public key)), as the original Rust mesh derived them,
 * so a Pool ID and a root key that do not belong together are detected.
 *
 * Exports: POOL_ID_HEX_LENGTH, MIN_POOL_ID_PREFIX, derivePoolId, parseRootPublicKey, parsePoolIdText,
 * matchPoolId, shortPoolId.
 */
import crypto from 'node:crypto'
import { AmbiguousPoolIdError, InvalidInputError, UnknownPoolError } from './errors.js'
import { fromHex } from './encoding.js'
import { PUBLIC_KEY_BYTES } from './keys.js'

export const POOL_ID_HEX_LENGTH = 64
/** shortest prefix a user may type for a Pool ID */
export const MIN_POOL_ID_PREFIX = 16

export function derivePoolId (rootPublicKey: Uint8Array): string {
  return crypto.createHash('sha256').update('meshnet-pool-v1').update(rootPublicKey).digest('hex')
}

/** A root public key as typed by a user: 64 hex digits. */
export function parseRootPublicKey (text: string): Uint8Array {
  const key = fromHex(text.trim(), PUBLIC_KEY_BYTES)
  if (key === undefined) {
    throw new InvalidInputError(`pool root public key must be ${PUBLIC_KEY_BYTES * 2} hex digits (got ${JSON.stringify(text.slice(0, 80))}); copy it from \`mesh pool-create\``)
  }
  return key
}

/** A Pool ID or prefix as typed by a user: 16..64 hex digits, returned lower-case. */
export function parsePoolIdText (text: string): string {
  const t = text.trim().toLowerCase()
  if (!/^[0-9a-f]*$/.test(t) || t.length < MIN_POOL_ID_PREFIX || t.length > POOL_ID_HEX_LENGTH) {
    throw new InvalidInputError(`Pool ID must be ${POOL_ID_HEX_LENGTH} hex digits, or a unique prefix of at least ${MIN_POOL_ID_PREFIX} (got ${JSON.stringify(text.slice(0, 80))})`)
  }
  return t
}

/** The one id among `known` that starts with the typed id or prefix. */
export function matchPoolId (typed: string, known: readonly string[]): string {
  const prefix = parsePoolIdText(typed)
  const hits = known.filter(id => id.startsWith(prefix))
  if (hits.length === 0) throw new UnknownPoolError(prefix)
  if (hits.length > 1) throw new AmbiguousPoolIdError(`Pool ID prefix ${prefix} matches ${hits.length} pools; type more digits`)
  return hits[0] as string
}

/** The 16-digit form shown in tables. */
export function shortPoolId (poolId: string): string { return poolId.slice(0, MIN_POOL_ID_PREFIX) }
