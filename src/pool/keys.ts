/**
 * ed25519 keys and their key files: @noble/ed25519 v3 derives public keys; signing and verifying use
 * node:crypto for speed (same RFC 8032 signatures).
 * A key file holds the 32-byte seed as JSON, mode 0600; its public key is derived on load.
 *
 * Exports: SEED_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, newSeed, publicKeyOf, sign, seal, verifySignature,
 * keyId, writeKeyFile, readKeyFile.
 */
import crypto from 'node:crypto'
import * as ed from '@noble/ed25519'
import { sha512 } from '@noble/hashes/sha2.js'
import { z } from 'zod'
import { CorruptFileError, readJsonFile, writeJsonAtomic } from '../atomic-file.js'
import { concatBytes, fromHex, toHex } from './encoding.js'

// the synchronous API needs a hash; set once, before any key is used
ed.hashes.sha512 = sha512

export const SEED_BYTES = 32
export const PUBLIC_KEY_BYTES = 32
export const SIGNATURE_BYTES = 64

export function newSeed (): Uint8Array { return new Uint8Array(crypto.randomBytes(SEED_BYTES)) }
export function publicKeyOf (seed: Uint8Array): Uint8Array { return ed.getPublicKey(seed) }

// DER wrappers of raw ed25519 keys (RFC 8410), so node:crypto can use them
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/**
 * Sign with node:crypto (OpenSSL): the same deterministic RFC 8032 signature @noble/ed25519 makes
 * (pool-keys.test.ts checks), about 8× faster, which matters for a beacon every few seconds.
 */
export function sign (message: Uint8Array, seed: Uint8Array): Uint8Array {
  const key = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  return new Uint8Array(crypto.sign(null, message, key))
}

/** `signedBytes ‖ signature`: the wire form of every signed mesh object. */
export function seal (signedBytes: Uint8Array, seed: Uint8Array): Uint8Array {
  return concatBytes(signedBytes, sign(signedBytes, seed))
}

/**
 * RFC 8032 verification with node:crypto (OpenSSL rejects a non-canonical S): every received beacon
 * and certificate passes here, and OpenSSL is about 8× faster than @noble/ed25519 on this machine.
 */
export function verifySignature (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false
  try {
    const key = crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' })
    return crypto.verify(null, message, key, signature)
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
