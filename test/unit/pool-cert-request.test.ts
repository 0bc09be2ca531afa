import { describe, expect, it } from 'vitest'
import { verifyMemberCert } from '../../src/pool/cert.js'
import { createCertRequest, decideCertRequest, decodeCertRequest, hasValidTokenProof, verifyCertRequestSignature, MAX_CERT_REQUEST_BYTES, type CertRequestContext } from '../../src/pool/cert-request.js'
import { BadSignatureError, MalformedError, InvalidInputError } from '../../src/pool/errors.js'
import { keyId } from '../../src/pool/keys.js'
import { newJoinToken, REQUEST_MAX_AGE_MS, type PoolPolicy } from '../../src/pool/policy.js'
import { signRevocationList } from '../../src/pool/revocation.js'
import { DEVICE, POOL_ID, ROOT_PUB, ROOT_SEED, T0, fixedDevice } from '../helpers/pool-fixtures.js'

const TOKEN = newJoinToken()
const NONCE = Buffer.alloc(16, 7)

function ctx (policy: PoolPolicy, over: Partial<CertRequestContext> = {}): CertRequestContext {
  return {
    poolId: POOL_ID, rootPrivateKey: ROOT_SEED, rootPublicKey: ROOT_PUB, policy, joinToken: TOKEN,
    memberNodeIds: new Set(), rejectedNodeIds: new Set(), ...over
  }
}

describe('certificate requests', () => {
  it('round-trip, are signed by the device and stay small', () => {
    const req = createCertRequest(DEVICE, POOL_ID, T0, TOKEN, NONCE)
    const back = decodeCertRequest(req.bytes)
    expect(back).toMatchObject({ poolId: POOL_ID, nodeId: DEVICE.nodeId, name: DEVICE.name, requestedAt: T0, nonce: '07'.repeat(16) })
    verifyCertRequestSignature(back)
    expect(req.bytes.length).toBeLessThanOrEqual(MAX_CERT_REQUEST_BYTES)
    // the largest proof, a pool key's public key and signature (96 bytes), still leaves a beacon far under 1200
    expect(MAX_CERT_REQUEST_BYTES).toBeLessThan(320)
  })
  it('prove the token without carrying it', () => {
    const req = createCertRequest(DEVICE, POOL_ID, T0, TOKEN, NONCE)
    expect(hasValidTokenProof(req, TOKEN)).toBe(true)
    expect(hasValidTokenProof(req, newJoinToken())).toBe(false)
    expect(Buffer.from(req.bytes).includes(Buffer.from(TOKEN, 'base64url'))).toBe(false)
    expect(Buffer.from(req.bytes).includes(Buffer.from(TOKEN))).toBe(false)
    expect(hasValidTokenProof(createCertRequest(DEVICE, POOL_ID, T0, undefined, NONCE), TOKEN)).toBe(false)
  })
  it('refuse a malformed join token', () => {
    expect(() => createCertRequest(DEVICE, POOL_ID, T0, 'not-a-token')).toThrow(InvalidInputError)
  })
  it('detect tampering with any byte', () => {
    const req = createCertRequest(DEVICE, POOL_ID, T0, TOKEN, NONCE)
    for (let i = 0; i < req.bytes.length; i++) {
      const b = Uint8Array.from(req.bytes); b[i] = (b[i] as number) ^ 1
      let caught: unknown
      try { verifyCertRequestSignature(decodeCertRequest(b)) } catch (err) { caught = err }
      expect(caught instanceof BadSignatureError || caught instanceof MalformedError, `byte ${i}: ${String(caught)}`).toBe(true)
    }
  })
  it('reject oversized, truncated and trailing bytes', () => {
    const req = createCertRequest(DEVICE, POOL_ID, T0, TOKEN, NONCE)
    for (const b of [new Uint8Array(MAX_CERT_REQUEST_BYTES + 1), req.bytes.subarray(1), Uint8Array.of(...req.bytes, 0)]) {
      expect(() => decodeCertRequest(b)).toThrow(MalformedError)
    }
  })
})

describe('decideCertRequest', () => {
  const withToken = createCertRequest(DEVICE, POOL_ID, T0, TOKEN, NONCE)
  const wrongToken = createCertRequest(DEVICE, POOL_ID, T0, newJoinToken(), NONCE)
  const noToken = createCertRequest(DEVICE, POOL_ID, T0, undefined, NONCE)
  const revocation = signRevocationList({ version: 1, poolId: POOL_ID, issuerKeyId: keyId(ROOT_PUB), sequence: 1, issuedAt: T0, serials: [], nodeIds: [DEVICE.nodeId] }, ROOT_SEED)
  const tampered = decodeCertRequest(Uint8Array.of(...withToken.bytes.subarray(0, -1), (withToken.bytes.at(-1) as number) ^ 1))

  it.each([
    ['token', withToken, {}, 'issue'],
    ['token', noToken, {}, 'missing-token'],
    ['token', wrongToken, {}, 'bad-token'],
    ['manual', withToken, {}, 'pending'],
    ['manual', noToken, {}, 'pending'],
    ['open', noToken, {}, 'issue'],
    ['open', tampered, {}, 'bad-signature'],
    ['open', createCertRequest(DEVICE, 'ab'.repeat(32), T0), {}, 'wrong-pool'],
    ['open', createCertRequest(DEVICE, POOL_ID, T0 - REQUEST_MAX_AGE_MS - 1), {}, 'stale'],
    ['open', noToken, { revocation }, 'revoked'],
    ['open', noToken, { rejectedNodeIds: new Set([DEVICE.nodeId]) }, 'rejected'],
    // a known member renews without token or approval
    ['manual', noToken, { memberNodeIds: new Set([DEVICE.nodeId]) }, 'issue'],
    ['token', noToken, { memberNodeIds: new Set([fixedDevice(9).nodeId]) }, 'missing-token']
  ] as const)('policy %s, case %#: %s', (policy, req, over, outcome) => {
    const d = decideCertRequest(req, ctx(policy, over), T0, 'aaaaaaaaaaaaaaaa')
    expect(d.kind === 'refuse' ? d.reason : d.kind).toBe(outcome)
  })
  it('issues a member certificate for the requesting device, valid now', () => {
    const d = decideCertRequest(withToken, ctx('token'), T0, 'aaaaaaaaaaaaaaaa')
    if (d.kind !== 'issue') throw new Error(d.kind)
    expect(d.cert).toMatchObject({ nodeId: DEVICE.nodeId, name: DEVICE.name, roles: ['member'], serial: 'aaaaaaaaaaaaaaaa' })
    verifyMemberCert(d.cert, { poolId: POOL_ID, rootPublicKey: ROOT_PUB }, T0)
  })
})
