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
