import crypto from 'node:crypto'

// Beacon signatures use node:crypto's native ed25519 rather than @noble/ed25519: the receive path
// verifies every packet that survives the cheap checks, and native verification is about 20× faster,
// which keeps a flood of forged packets from pinning the event loop. The signatures are the same
// RFC 8032 ed25519 either way, so keys made by src/pool work here unchanged.

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** Signs with a device key given as its 32-byte ed25519 seed. */
export interface Signer {
  readonly publicKey: Uint8Array
  sign: (message: Uint8Array) => Uint8Array
}

export function ed25519Signer (seed: Uint8Array, publicKey: Uint8Array): Signer {
  if (seed.length !== 32) throw new RangeError('an ed25519 private key seed is 32 bytes')
  const key = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  return { publicKey, sign: (message) => new Uint8Array(crypto.sign(null, message, key)) }
}

// Parsing a public key costs more than the verification itself; senders repeat, so keep the last few.
const KEY_CACHE = 1024
const keys = new Map<string, crypto.KeyObject>()

function publicKeyObject (publicKey: Uint8Array): crypto.KeyObject {
  const id = Buffer.from(publicKey).toString('base64')
  let key = keys.get(id)
  if (key === undefined) {
    key = crypto.createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' })
    if (keys.size >= KEY_CACHE) keys.delete(keys.keys().next().value as string)
    keys.set(id, key)
  }
  return key
}

/** Verifies an ed25519 signature; false (never a throw) for any malformed key or signature. */
export function ed25519Verify (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false
  try {
    return crypto.verify(null, message, publicKeyObject(publicKey), signature)
  } catch {
    return false // not a point on the curve
  }
}
