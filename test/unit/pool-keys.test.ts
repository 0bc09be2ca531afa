import * as ed from '@noble/ed25519'
import { sha512 } from '@noble/hashes/sha2.js'
import { describe, expect, it } from 'vitest'
import { keyId, newSeed, publicKeyOf, sign, verifySignature } from '../../src/pool/keys.js'

// the reference implementation's synchronous API needs a hash
ed.hashes.sha512 = sha512

describe('ed25519 through node:crypto agrees with @noble/ed25519', () => {
  it('derives the same public keys, makes the same signatures and accepts and refuses the same ones', () => {
    for (let i = 0; i < 20; i++) {
      const seed = newSeed()
      const pub = publicKeyOf(seed)
      expect(pub).toEqual(ed.getPublicKey(seed))
      const msg = newSeed().subarray(0, i * 3)
      const sig = sign(msg, seed)
      expect(sig).toEqual(ed.sign(msg, seed))
      expect(verifySignature(sig, msg, pub)).toBe(true)
      expect(ed.verify(sig, msg, pub, { zip215: false })).toBe(true)
      const bad = Uint8Array.from(sig); bad[i % 64] = (bad[i % 64] as number) ^ 0x40
      expect(verifySignature(bad, msg, pub)).toBe(ed.verify(bad, msg, pub, { zip215: false }))
      expect(verifySignature(bad, msg, pub)).toBe(false)
    }
  })
  it('refuses a non-canonical S (S + L), wrong lengths and a key that is not a point', () => {
    const seed = new Uint8Array(32).fill(5); const pub = publicKeyOf(seed); const msg = Uint8Array.of(1, 2, 3)
    const sig = sign(msg, seed)
    const L = (1n << 252n) + 27742317777372353535851937790883648493n
    let s = 0n
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i] as number)
    const sPlusL = s + L
    const nonCanonical = Uint8Array.from(sig)
    for (let i = 0; i < 32; i++) nonCanonical[32 + i] = Number((sPlusL >> BigInt(8 * i)) & 0xffn)
    expect(sPlusL < (1n << 256n)).toBe(true)
    expect(verifySignature(nonCanonical, msg, pub)).toBe(false)
    expect(verifySignature(sig.subarray(1), msg, pub)).toBe(false)
    expect(verifySignature(sig, msg, pub.subarray(1))).toBe(false)
    const notPoint = new Uint8Array(32).fill(0xff)
    expect(verifySignature(sig, msg, notPoint)).toBe(false)
  })
  it('key ids are 16 hex digits and differ per key', () => {
    expect(keyId(publicKeyOf(new Uint8Array(32).fill(1)))).toMatch(/^[0-9a-f]{16}$/)
    expect(keyId(publicKeyOf(new Uint8Array(32).fill(1)))).not.toBe(keyId(publicKeyOf(new Uint8Array(32).fill(2))))
  })
})
