/**
 * ed25519 keys (@noble/ed25519 v3, synchronous API) and their key files.
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
export function sign (message: Uint8Array, seed: Uint8Array): Uint8Array { return ed.sign(message, seed) }

/** `signedBytes ‖ signature`: the wire form of every signed mesh object. */
export function seal (signedBytes: Uint8Array, seed: Uint8Array): Uint8Array {
  return concatBytes(signedBytes, sign(signedBytes, seed))
}

/** Strict RFC 8032 verification (not ZIP-215): one message, one valid signature encoding. */
export function verifySignature (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return ed.verify(signature, message, publicKey, { zip215: false })
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
