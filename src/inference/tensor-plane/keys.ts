import { hkdfSync } from 'node:crypto'

/** The two AES-256-GCM keys of one link: one per direction, so a nonce is never used under both. */
export interface LinkKeys {
  readonly send: Buffer
  readonly receive: Buffer
}

const SALT = Buffer.from('mesh tensor-plane v1')

/**
 * Derive a link's keys from the secret the pair agreed (over the certificate-checked libp2p
 * stream). Each direction's key is bound to its sender and receiver ids, so a frame can neither
 * be reflected back to its sender nor replayed on another pair's link.
 */
export function deriveLinkKeys (secret: Uint8Array, selfId: string, peerId: string): LinkKeys {
  if (selfId === peerId) throw new RangeError('a tensor-plane link joins two different members')
  const key = (from: string, to: string): Buffer =>
    Buffer.from(hkdfSync('sha256', secret, SALT, `${from}\u0000${to}`, 32))
  return { send: key(selfId, peerId), receive: key(peerId, selfId) }
}

const PAIR_SALT = Buffer.from('mesh tensor-plane pair v1')

/**
 * The pair secret two members agree for their tensor-plane link, from their X25519 shared secret,
 * bound to the pool and both node ids (in a fixed order, so both sides derive the same bytes).
 */
export function pairSecret (shared: Uint8Array, poolId: string, a: string, b: string): Buffer {
  const [lo, hi] = a < b ? [a, b] : [b, a]
  return Buffer.from(hkdfSync('sha256', shared, PAIR_SALT, `${poolId}\u0000${lo}\u0000${hi}`, 32))
}
