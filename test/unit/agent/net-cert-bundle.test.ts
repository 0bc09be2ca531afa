import { describe, expect, it } from 'vitest'
import { CertBundleError, decodeCertBundle, encodeCertBundle, MAX_BUNDLE_BYTES } from '../../../src/agent/net/cert-bundle.js'

describe('certificate bundle', () => {
  it('has golden bytes and round-trips', () => {
    const b = { certificates: [Uint8Array.of(1, 2, 3), Uint8Array.of(4)], revocations: [Uint8Array.of(9, 9)] }
    const bytes = encodeCertBundle(b)
    expect(Buffer.from(bytes).toString('hex')).toBe('01' + '0002' + '0003010203' + '000104' + '01' + '000000020909')
    expect(decodeCertBundle(bytes)).toEqual(b)
    expect(decodeCertBundle(encodeCertBundle({ certificates: [], revocations: [] }))).toEqual({ certificates: [], revocations: [] })
  })

  it.each<[string, Uint8Array, RegExp]>([
    ['oversized', new Uint8Array(MAX_BUNDLE_BYTES + 1), /oversized/],
    ['empty', new Uint8Array(0), /truncated/],
    ['unknown version', Uint8Array.of(2, 0, 0, 0), /version/],
    ['a length past the end', Uint8Array.of(1, 0, 1, 0, 9, 1), /truncated/],
    ['a certificate longer than any certificate', Uint8Array.of(1, 0, 1, 0xff, 0xff), /too long/],
    ['too many revocation lists', Uint8Array.of(1, 0, 0, 200), /too many/],
    ['trailing bytes', Uint8Array.of(1, 0, 0, 0, 7), /trailing/]
  ])('rejects %s', (_name, bytes, message) => {
    expect(() => decodeCertBundle(bytes)).toThrow(CertBundleError)
    expect(() => decodeCertBundle(bytes)).toThrow(message)
  })
})
