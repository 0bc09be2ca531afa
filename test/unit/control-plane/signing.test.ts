import { describe, expect, it } from 'vitest'
import { TIMESTAMP_WINDOW_MS, canonicalRequest, signRequest, verifySignedRequest } from '../../../src/control-plane/signing.js'
import { makeMember, makePool } from '../../helpers/members.js'

const NOW = 1_800_000_000_000
const NONCE = '0123456789abcdef0123456789abcdef'
const body = new TextEncoder().encode('{"weight":2}')

describe('signed control-plane requests', () => {
  const m = makeMember(makePool(), 'laptop', { notBefore: NOW - 1000, notAfter: NOW + 1000 })
  const req = { method: 'POST', path: '/v1/pools/x/ring/join', body, timestamp: NOW, nonce: NONCE }
  const headers = signRequest(req, m.certBytes, m.seed)

  it('binds method, path, body hash, timestamp and nonce in one canonical text', () => {
    expect(new TextDecoder().decode(canonicalRequest(req))).toBe(
      'mesh-control-plane-request-v1\nPOST\n/v1/pools/x/ring/join\n' +
      // sha256 of the body
      'f9192d0cdab3f8af9fcf86bb835d83971b6dc2be5b74339524c1b4b9170d6c4c' +
      `\n${NOW}\n${NONCE}`)
  })

  it('accepts the request it signed and returns the certificate', () => {
    const v = verifySignedRequest('POST', req.path, body, headers, NOW + 5000)
    expect(v.ok && v.cert.nodeId).toBe(m.nodeId)
  })

  it('refuses any change to a signed field as a bad signature', () => {
    const changed: Array<[string, string, Uint8Array, Record<string, string>]> = [
      ['GET', req.path, body, headers],
      ['POST', '/v1/pools/x/ring/leave', body, headers],
      ['POST', req.path, new TextEncoder().encode('{"weight":3}'), headers],
      ['POST', req.path, body, { ...headers, 'x-mesh-timestamp': String(NOW + 1) }],
      ['POST', req.path, body, { ...headers, 'x-mesh-nonce': NONCE.replace('0', '1') }]
    ]
    for (const [method, path, b, h] of changed) {
      expect(verifySignedRequest(method, path, b, h, NOW)).toMatchObject({ ok: false, reason: 'bad-signature' })
    }
  })

  it('refuses missing or malformed headers, stale timestamps and undecodable certificates', () => {
    const { 'x-mesh-nonce': _n, ...noNonce } = headers
    expect(verifySignedRequest('POST', req.path, body, noNonce, NOW)).toMatchObject({ ok: false, reason: 'unauthenticated' })
    expect(verifySignedRequest('POST', req.path, body, { ...headers, 'x-mesh-nonce': 'short' }, NOW)).toMatchObject({ reason: 'unauthenticated' })
    expect(verifySignedRequest('POST', req.path, body, { ...headers, 'x-mesh-signature': 'AAAA' }, NOW)).toMatchObject({ reason: 'unauthenticated' })
    expect(verifySignedRequest('POST', req.path, body, headers, NOW + TIMESTAMP_WINDOW_MS + 1)).toMatchObject({ reason: 'stale-timestamp' })
    expect(verifySignedRequest('POST', req.path, body, headers, NOW - TIMESTAMP_WINDOW_MS - 1)).toMatchObject({ reason: 'stale-timestamp' })
    expect(verifySignedRequest('POST', req.path, body, { ...headers, 'x-mesh-cert': 'AAAA' }, NOW)).toMatchObject({ reason: 'bad-certificate' })
    expect(verifySignedRequest('POST', req.path, body, { ...headers, 'x-mesh-cert': 'A'.repeat(5000) }, NOW)).toMatchObject({ reason: 'bad-certificate' })
  })
})
