import { describe, expect, it } from 'vitest'
import { AmbiguousPoolIdError, InvalidInputError, UnknownPoolError } from '../../src/pool/errors.js'
import { derivePoolId, matchPoolId, parsePoolIdText, parseRootPublicKey } from '../../src/pool/pool-id.js'

const VECTOR_KEY = '08b75d02170a95193f595961eec988e11e103fbea60ba6c607570550dc859150'
const VECTOR_ID = '602e587a5e549df0335ddddde1d7a73e163116015dfd047d071640f36e74e00a'

describe('Pool ID', () => {
  it('matches the DESIGN.md test vector', () => {
    expect(derivePoolId(parseRootPublicKey(VECTOR_KEY))).toBe(VECTOR_ID)
    expect(derivePoolId(parseRootPublicKey(VECTOR_KEY.toUpperCase()))).toBe(VECTOR_ID)
  })
  it('rejects malformed root keys with a usage error', () => {
    for (const bad of ['', VECTOR_KEY.slice(2), VECTOR_KEY + '00', 'zz' + VECTOR_KEY.slice(2), VECTOR_KEY.replace('0', ' ')]) {
      expect(() => parseRootPublicKey(bad)).toThrow(InvalidInputError)
    }
  })
  it('accepts a full id or a prefix of at least 16 hex digits, nothing else', () => {
    expect(parsePoolIdText(VECTOR_ID.toUpperCase())).toBe(VECTOR_ID)
    expect(parsePoolIdText(VECTOR_ID.slice(0, 16))).toBe(VECTOR_ID.slice(0, 16))
    for (const bad of [VECTOR_ID.slice(0, 15), VECTOR_ID + '0', 'g'.repeat(64), '']) {
      expect(() => parsePoolIdText(bad)).toThrow(InvalidInputError)
    }
  })
  it('resolves a unique prefix among known ids', () => {
    const other = VECTOR_ID.slice(0, 20) + 'f'.repeat(44)
    expect(matchPoolId(VECTOR_ID.slice(0, 21), [VECTOR_ID, other])).toBe(VECTOR_ID)
    expect(() => matchPoolId(VECTOR_ID.slice(0, 20), [VECTOR_ID, other])).toThrow(AmbiguousPoolIdError)
    expect(() => matchPoolId('0'.repeat(16), [VECTOR_ID])).toThrow(UnknownPoolError)
  })
})
