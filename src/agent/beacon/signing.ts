import { seedSigner } from '../../pool/keys.js'

/** Signs beacons with a device key given as its 32-byte ed25519 seed (src/pool/keys.ts does the work). */
export interface Signer {
  readonly publicKey: Uint8Array
  sign: (message: Uint8Array) => Uint8Array
}

export function ed25519Signer (seed: Uint8Array, publicKey: Uint8Array): Signer {
  return { publicKey, sign: seedSigner(seed) }
}
