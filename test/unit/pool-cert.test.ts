import { describe, expect, it } from 'vitest'
import { MAX_CERT_BYTES, decodeMemberCert, expectCertNode, signMemberCert, verifyMemberCert, verifyMemberCertBytes } from '../../src/pool/cert.js'
import { toHex } from '../../src/pool/encoding.js'
import {
  BadSignatureError, ExpiredError, MalformedError, NotYetValidError, RevokedError, UnknownIssuerError,
  VerifyError, WrongNodeError, WrongPoolError
} from '../../src/pool/errors.js'
import { keyId, publicKeyOf } from '../../src/pool/keys.js'
import { derivePoolId } from '../../src/pool/pool-id.js'
import { signRevocationList } from '../../src/pool/revocation.js'
import { DAY, DEVICE, OTHER_ROOT_SEED, POOL_ID, ROOT_PUB, ROOT_SEED, T0, fixedDevice, unsignedCert } from '../helpers/pool-fixtures.js'

const trust = { poolId: POOL_ID, rootPublicKey: ROOT_PUB }
const NOW = T0 + DAY

// Field offsets of the wire layout (see src/pool/cert.ts), for a 6-byte name
const FIELDS = {
  kind: [0, 1], version: [1, 2], poolId: [2, 34], devicePublicKey: [34, 66], nameLength: [66, 67], name: [67, 73],
  roles: [73, 74], serial: [74, 82], notBefore: [82, 90], notAfter: [90, 98], issuerKeyId: [98, 106], signature: [106, 170]
} as const

/** A stable encoding: these bytes must never change for version 1 (signatures depend on them). */
const GOLDEN = '01019243f62f365c9f02cd0bc61ac7e88ae13f0eb12518684bb447b9eb678f386abb8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394066c6170746f70020123456789abcdef0000019b76daa8000000019c115970006f6704a5eb20d53b853b152fa70c362b8f64ede842651d503f84557680dc6a8160a616f7b0d059f2c1531ebc00f33cbcaeeae6a99f23cef950f550fbae46667a6d2fec191fb45e05'

function flip (bytes: Uint8Array, i: number): Uint8Array { const b = Uint8Array.from(bytes); b[i] = (b[i] as number) ^ 0x01; return b }

describe('member certificate encoding', () => {
  it('is byte-for-byte stable (golden bytes) and small enough for a beacon', () => {
    const cert = signMemberCert(unsignedCert(), ROOT_SEED)
    expect(toHex(cert.bytes)).toBe(GOLDEN)
    expect(cert.bytes.length).toBe(170)
    expect(MAX_CERT_BYTES).toBeLessThanOrEqual(300)
    // the layout as documented
    const at = (f: keyof typeof FIELDS): string => toHex(cert.bytes.subarray(...FIELDS[f]))
    expect(at('poolId')).toBe(POOL_ID)
    expect(at('devicePublicKey')).toBe(toHex(DEVICE.publicKey))
    expect(Buffer.from(cert.bytes.subarray(...FIELDS.name)).toString()).toBe('laptop')
    expect(at('serial')).toBe('0123456789abcdef')
    expect(at('issuerKeyId')).toBe(keyId(ROOT_PUB))
  })
  it('round-trips every field', () => {
    const u = unsignedCert({ roles: ['admin', 'member'], name: 'Ünïcode box ✓' })
    const cert = signMemberCert(u, ROOT_SEED)
    const back = decodeMemberCert(cert.bytes)
    expect({ ...back, bytes: undefined, signedBytes: undefined, signature: undefined })
      .toEqual({ ...u, bytes: undefined, signedBytes: undefined, signature: undefined })
    expect(back.bytes).toEqual(cert.bytes)
    verifyMemberCert(back, trust, NOW)
  })
  it('a maximal certificate (64-byte name) fits MAX_CERT_BYTES exactly', () => {
    const cert = signMemberCert(unsignedCert({ name: 'x'.repeat(64), roles: ['admin', 'member'] }), ROOT_SEED)
    expect(cert.bytes.length).toBe(MAX_CERT_BYTES)
  })
  it('refuses to sign with a key other than the named issuer, or inconsistent fields', () => {
    expect(() => signMemberCert(unsignedCert(), OTHER_ROOT_SEED)).toThrow(/issuerKeyId/)
    expect(() => signMemberCert(unsignedCert({ nodeId: fixedDevice(9).nodeId }), ROOT_SEED)).toThrow(/nodeId/)
    expect(() => signMemberCert(unsignedCert({ notAfter: T0 }), ROOT_SEED)).toThrow(/validity/)
  })
})

describe('strict decoding', () => {
  const good = signMemberCert(unsignedCert(), ROOT_SEED).bytes
  const malformed: Array<[string, Uint8Array]> = [
    ['empty', new Uint8Array()],
    ['oversized', new Uint8Array(MAX_CERT_BYTES + 1)],
    ['truncated', good.subarray(0, good.length - 1)],
    ['trailing byte', Uint8Array.of(...good, 0)],
    ['other kind', Uint8Array.of(2, ...good.subarray(1))],
    ['other version', Uint8Array.of(1, 2, ...good.subarray(2))],
    ['name length past the end', (() => { const b = Uint8Array.from(good); b[66] = 200; return b })()],
    ['empty name', (() => { const b = Uint8Array.from(good); b[66] = 0; return b })()],
    ['unknown role bits', (() => { const b = Uint8Array.from(good); b[73] = 4; return b })()],
    ['no roles', (() => { const b = Uint8Array.from(good); b[73] = 0; return b })()],
    ['notAfter before notBefore', (() => { const b = Uint8Array.from(good); b.set(good.subarray(82, 90), 90); return b })()],
    ['invalid UTF-8 name', (() => { const b = Uint8Array.from(good); b[67] = 0xff; return b })()],
    ['control character in name', (() => { const b = Uint8Array.from(good); b[67] = 0x0a; return b })()]
  ]
  it.each(malformed)('rejects %s as malformed', (_what, bytes) => {
    expect(() => decodeMemberCert(bytes)).toThrow(MalformedError)
  })
  it('keeps its own copy of the received bytes', () => {
    const buf = Uint8Array.from(good)
    const cert = decodeMemberCert(buf)
    buf.fill(0)
    verifyMemberCert(cert, trust, NOW)
  })
})

describe('verification: ordered checks, each with its own error', () => {
  const cert = signMemberCert(unsignedCert(), ROOT_SEED)
  it('accepts a good certificate inside its validity', () => {
    expect(() => verifyMemberCert(cert, trust, T0)).not.toThrow()
    expect(verifyMemberCertBytes(cert.bytes, trust, T0 + 30 * DAY - 1).serial).toBe('0123456789abcdef')
  })
  it('wrong pool', () => {
    const otherPool = { poolId: derivePoolId(publicKeyOf(OTHER_ROOT_SEED)), rootPublicKey: publicKeyOf(OTHER_ROOT_SEED) }
    expect(() => verifyMemberCert(cert, otherPool, NOW)).toThrow(WrongPoolError)
  })
  it('signed by another key under its own key id: unknown issuer', () => {
    const forged = signMemberCert(unsignedCert({ issuerKeyId: keyId(publicKeyOf(OTHER_ROOT_SEED)) }), OTHER_ROOT_SEED)
    expect(() => verifyMemberCert(forged, trust, NOW)).toThrow(UnknownIssuerError)
  })
  it('signed by another key claiming the real issuer: bad signature', () => {
    // sign with the other key, then splice its signature onto the real issuer's fields
    const other = signMemberCert(unsignedCert({ issuerKeyId: keyId(publicKeyOf(OTHER_ROOT_SEED)) }), OTHER_ROOT_SEED)
    const bytes = Uint8Array.of(...cert.signedBytes, ...other.signature)
    expect(() => verifyMemberCertBytes(bytes, trust, NOW)).toThrow(BadSignatureError)
  })
  it('revoked by serial or by node id', () => {
    const base = { version: 1 as const, poolId: POOL_ID, issuerKeyId: keyId(ROOT_PUB), sequence: 1, issuedAt: T0 }
    const bySerial = signRevocationList({ ...base, serials: [cert.serial], nodeIds: [] }, ROOT_SEED)
    const byNode = signRevocationList({ ...base, serials: [], nodeIds: [cert.nodeId] }, ROOT_SEED)
    const unrelated = signRevocationList({ ...base, serials: ['ffffffffffffffff'], nodeIds: [fixedDevice(9).nodeId] }, ROOT_SEED)
    expect(() => verifyMemberCert(cert, { ...trust, revocation: bySerial }, NOW)).toThrow(RevokedError)
    expect(() => verifyMemberCert(cert, { ...trust, revocation: byNode }, NOW)).toThrow(RevokedError)
    expect(() => verifyMemberCert(cert, { ...trust, revocation: unrelated }, NOW)).not.toThrow()
  })
  it('not yet valid, expired (notAfter exclusive)', () => {
    expect(() => verifyMemberCert(cert, trust, T0 - 1)).toThrow(NotYetValidError)
    expect(() => verifyMemberCert(cert, trust, T0 + 30 * DAY)).toThrow(ExpiredError)
  })
  it('cheaper checks come first: a wrong-pool expired cert reports the pool', () => {
    const otherPool = { poolId: 'ab'.repeat(32), rootPublicKey: ROOT_PUB }
    expect(() => verifyMemberCert(cert, otherPool, T0 + 99 * DAY)).toThrow(WrongPoolError)
  })
  it('names the node it is for', () => {
    expect(() => expectCertNode(cert, DEVICE.nodeId)).not.toThrow()
    expect(() => expectCertNode(cert, fixedDevice(9).nodeId)).toThrow(WrongNodeError)
  })
})

describe('tampering with any byte is detected', () => {
  const cert = signMemberCert(unsignedCert(), ROOT_SEED)
  const expected: Record<keyof typeof FIELDS, Array<new (...a: never[]) => VerifyError>> = {
    kind: [MalformedError],
    version: [MalformedError],
    poolId: [WrongPoolError],
    devicePublicKey: [BadSignatureError, MalformedError], // a flipped key may not be a curve point
    nameLength: [MalformedError],
    name: [BadSignatureError],
    roles: [BadSignatureError, MalformedError],
    serial: [BadSignatureError],
    notBefore: [BadSignatureError, NotYetValidError, MalformedError],
    notAfter: [BadSignatureError, ExpiredError, MalformedError],
    issuerKeyId: [UnknownIssuerError],
    signature: [BadSignatureError]
  }
  for (const [field, [from, to]] of Object.entries(FIELDS) as Array<[keyof typeof FIELDS, readonly [number, number]]>) {
    it(`every byte of ${field}`, () => {
      for (let i = from; i < to; i++) {
        let caught: unknown
        try { verifyMemberCertBytes(flip(cert.bytes, i), trust, NOW) } catch (err) { caught = err }
        expect(expected[field].some(cls => caught instanceof cls), `byte ${i} (${field}): ${String(caught)}`).toBe(true)
      }
    })
  }
  it('the untouched certificate still verifies (the test is not vacuous)', () => {
    expect(() => verifyMemberCertBytes(cert.bytes, trust, NOW)).not.toThrow()
  })
})
