/**
 * ed25519 keys and their key files, through node:crypto (OpenSSL): the same RFC 8032 keys and
 * signatures as @noble/ed25519 (pool-keys.test.ts checks), several times faster.
 * A key file holds the 32-byte seed as JSON, mode 0600; its public key is derived on load.
 *
 * Exports: SEED_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, newSeed, publicKeyOf, seedSigner, sign, seal,
 * verifySignature, keyId, writeKeyFile, readKeyFile.
 */
import crypto from 'node:crypto'
import { z } from 'zod'
import { CorruptFileError, readJsonFile, writeJsonAtomic } from '../atomic-file.js'
import { concatBytes, fromHex, toHex } from './encoding.js'

export const SEED_BYTES = 32
export const PUBLIC_KEY_BYTES = 32
export const SIGNATURE_BYTES = 64

export function newSeed (): Uint8Array { return new Uint8Array(crypto.randomBytes(SEED_BYTES)) }

// DER wrappers of raw ed25519 keys (RFC 8410), so node:crypto can use them
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

function privateKeyObject (seed: Uint8Array): crypto.KeyObject {
  if (seed.length !== SEED_BYTES) throw new RangeError(`an ed25519 private key seed is ${SEED_BYTES} bytes`)
  return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
}

/**
 * The public key of a seed. Every command that loads this device's identity derives it: OpenSSL
 * takes ~1.5 ms where @noble/ed25519 took ~20 ms in a fresh process (its tables are built on first use).
 */
export function publicKeyOf (seed: Uint8Array): Uint8Array {
  const spki = crypto.createPublicKey(privateKeyObject(seed)).export({ format: 'der', type: 'spki' })
  return new Uint8Array(spki.subarray(SPKI_PREFIX.length))
}

/**
 * A signing function for one seed, its key parsed once (senders of beacons and heartbeats sign
 * often). node:crypto (OpenSSL) makes the same deterministic RFC 8032 signature @noble/ed25519
 * makes (pool-keys.test.ts checks), about 8× faster.
 */
export function seedSigner (seed: Uint8Array): (message: Uint8Array) => Uint8Array {
  const key = privateKeyObject(seed)
  return (message) => new Uint8Array(crypto.sign(null, message, key))
}

export function sign (message: Uint8Array, seed: Uint8Array): Uint8Array {
  return seedSigner(seed)(message)
}

/** `signedBytes ‖ signature`: the wire form of every signed mesh object. */
export function seal (signedBytes: Uint8Array, seed: Uint8Array): Uint8Array {
  return concatBytes(signedBytes, sign(signedBytes, seed))
}

// Parsing a public key costs more than verifying with it, and senders repeat: keep the last few.
const PUBLIC_KEY_CACHE = 1024
const publicKeys = new Map<string, crypto.KeyObject>()

function publicKeyObject (publicKey: Uint8Array): crypto.KeyObject {
  const id = Buffer.from(publicKey).toString('base64')
  let key = publicKeys.get(id)
  if (key === undefined) {
    key = crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' })
    if (publicKeys.size >= PUBLIC_KEY_CACHE) publicKeys.delete(publicKeys.keys().next().value as string)
    publicKeys.set(id, key)
  }
  return key
}

/**
 * RFC 8032 verification with node:crypto (OpenSSL rejects a non-canonical S): every received beacon,
 * heartbeat and certificate passes here, and OpenSSL is about 8× faster than @noble/ed25519 on this
 * machine. False (never a throw) for any malformed key or signature.
 */
export function verifySignature (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false
  try {
    return crypto.verify(null, message, publicKeyObject(publicKey), signature)
  } catch {
    return false // a public key that is not a curve point
  }
}

/** Short id of a public key, carried as a certificate's issuer: hex of 8 bytes of SHA-256. */
export function keyId (publicKey: Uint8Array): string {
  return crypto.createHash('sha256').update('meshnet-key-id-v1').update(publicKey).digest('hex').slice(0, 16)
}

const KeyFile = z.object({ version: z.literal(1), type: z.literal('ed25519'), seed: z.string() }).strict()

export function writeKeyFile (file: string, seed: Uint8Array): void {
  writeJsonAtomic(file, { version: 1, type: 'ed25519', seed: toHex(seed) }, 0o600)
}

/** The seed in `file`, or undefined if it does not exist; CorruptFileError if it is not a valid key file. */
export function readKeyFile (file: string): Uint8Array | undefined {
  const raw = readJsonFile(file)
  if (raw === undefined) return undefined
  const parsed = KeyFile.safeParse(raw)
  if (!parsed.success) throw new CorruptFileError(file, 'not a mesh key file')
  const seed = fromHex(parsed.data.seed, SEED_BYTES)
  if (seed === undefined) throw new CorruptFileError(file, `seed is not ${SEED_BYTES * 2} hex digits`)
  return seed
}
