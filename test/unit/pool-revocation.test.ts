import { describe, expect, it } from 'vitest'
import { toHex } from '../../src/pool/encoding.js'
import { BadSignatureError, MalformedError, StaleRevocationError, UnknownIssuerError, VerifyError, WrongPoolError } from '../../src/pool/errors.js'
import { keyId, publicKeyOf } from '../../src/pool/keys.js'
import {
  MAX_REVOCATION_BYTES, decodeRevocationList, isNewerRevocationList, isRevoked, signRevocationList,
  verifyRevocationList, verifyRevocationListBytes, type UnsignedRevocationList
} from '../../src/pool/revocation.js'
import { DEVICE, OTHER_ROOT_SEED, POOL_ID, ROOT_PUB, ROOT_SEED, T0, fixedDevice } from '../helpers/pool-fixtures.js'

const trust = { poolId: POOL_ID, rootPublicKey: ROOT_PUB }
const OTHER = fixedDevice(9)

function unsigned (over: Partial<UnsignedRevocationList> = {}): UnsignedRevocationList {
  return {
    version: 1, poolId: POOL_ID, issuerKeyId: keyId(ROOT_PUB), sequence: 7, issuedAt: T0,
    serials: ['ffffffffffffffff', '0123456789abcdef'], nodeIds: [DEVICE.nodeId, OTHER.nodeId], ...over
  }
}

const GOLDEN = '02019243f62f365c9f02cd0bc61ac7e88ae13f0eb12518684bb447b9eb678f386abb6f6704a5eb20d53b00000000000000070000019b76daa80000020123456789abcdefffffffffffffffff00028139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f6185c9deb834a6f8089ceeca5c74e43c7b3c63503aaab1d510a8ffd32bde6109ccf4649493a4fe7c1a8f37c44e44d49015ede8d7725b8a35f8b32166fe1466c0706'
// offsets for 2 serials and 2 nodes
const FIELDS = {
  kind: [0, 1], version: [1, 2], poolId: [2, 34], issuerKeyId: [34, 42], sequence: [42, 50], issuedAt: [50, 58],
  serialCount: [58, 60], serials: [60, 76], nodeCount: [76, 78], nodes: [78, 142], signature: [142, 206]
} as const

describe('revocation list encoding', () => {
  it('is byte-for-byte stable, with entries sorted whatever the input order', () => {
    const l = signRevocationList(unsigned(), ROOT_SEED)
    expect(toHex(l.bytes)).toBe(GOLDEN)
    const shuffled = signRevocationList(unsigned({ serials: ['0123456789abcdef', 'ffffffffffffffff', '0123456789abcdef'], nodeIds: [OTHER.nodeId, DEVICE.nodeId] }), ROOT_SEED)
    expect(toHex(shuffled.bytes)).toBe(GOLDEN)
  })
  it('round-trips', () => {
    const l = decodeRevocationList(signRevocationList(unsigned(), ROOT_SEED).bytes)
    expect(l.sequence).toBe(7)
    expect(l.issuedAt).toBe(T0)
    expect(l.serials).toEqual(['0123456789abcdef', 'ffffffffffffffff'])
    expect(new Set(l.nodeIds)).toEqual(new Set([DEVICE.nodeId, OTHER.nodeId]))
    verifyRevocationList(l, trust)
    expect(isRevoked(l, 'ffffffffffffffff', 'x')).toBe(true)
    expect(isRevoked(l, '1111111111111111', OTHER.nodeId)).toBe(true)
    expect(isRevoked(l, '1111111111111111', fixedDevice(10).nodeId)).toBe(false)
  })
  it('an empty list is valid', () => {
    const l = signRevocationList(unsigned({ serials: [], nodeIds: [] }), ROOT_SEED)
    expect(verifyRevocationListBytes(l.bytes, trust).serials).toEqual([])
  })
})

describe('strict decoding', () => {
  const good = signRevocationList(unsigned(), ROOT_SEED).bytes
  const with_ = (i: number, v: number[]): Uint8Array => { const b = Uint8Array.from(good); b.set(v, i); return b }
  it.each([
    ['oversized', new Uint8Array(MAX_REVOCATION_BYTES + 1)],
    ['truncated', good.subarray(0, good.length - 1)],
    ['trailing byte', Uint8Array.of(...good, 0)],
    ['other kind', with_(0, [1])],
    ['sequence 0', with_(42, [0, 0, 0, 0, 0, 0, 0, 0])],
    ['count beyond the data', with_(58, [0, 9])],
    ['unsorted serials', Uint8Array.of(...good.subarray(0, 60), ...good.subarray(68, 76), ...good.subarray(60, 68), ...good.subarray(76))],
    ['duplicate serials', Uint8Array.of(...good.subarray(0, 60), ...good.subarray(60, 68), ...good.subarray(60, 68), ...good.subarray(76))]
  ])('rejects %s as malformed', (_what, bytes) => {
    expect(() => decodeRevocationList(bytes)).toThrow(MalformedError)
  })
})

describe('verification and sequence', () => {
  const l7 = signRevocationList(unsigned(), ROOT_SEED)
  it('wrong pool, other issuer, other signer', () => {
    expect(() => verifyRevocationList(l7, { poolId: 'ab'.repeat(32), rootPublicKey: ROOT_PUB })).toThrow(WrongPoolError)
    const otherIssuer = signRevocationList(unsigned({ issuerKeyId: keyId(publicKeyOf(OTHER_ROOT_SEED)) }), OTHER_ROOT_SEED)
    expect(() => verifyRevocationList(otherIssuer, trust)).toThrow(UnknownIssuerError)
    const spliced = Uint8Array.of(...l7.signedBytes, ...otherIssuer.signature)
    expect(() => verifyRevocationListBytes(spliced, trust)).toThrow(BadSignatureError)
  })
  it('only a higher sequence replaces the held list; a lower one is refused', () => {
    const l8 = signRevocationList(unsigned({ sequence: 8 }), ROOT_SEED)
    const l6 = signRevocationList(unsigned({ sequence: 6 }), ROOT_SEED)
    expect(isNewerRevocationList(undefined, l6)).toBe(true)
    expect(isNewerRevocationList(l7, l8)).toBe(true)
    expect(isNewerRevocationList(l7, l7)).toBe(false)
    expect(() => isNewerRevocationList(l7, l6)).toThrow(StaleRevocationError)
  })
  for (const [field, [from, to]] of Object.entries(FIELDS)) {
    it(`tampering with any byte of ${field} is detected`, () => {
      for (let i = from; i < to; i++) {
        const b = Uint8Array.from(l7.bytes); b[i] = (b[i] as number) ^ 1
        expect(() => verifyRevocationListBytes(b, trust), `byte ${i}`).toThrow(VerifyError)
      }
    })
  }
})
