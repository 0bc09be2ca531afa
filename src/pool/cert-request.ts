/**
 * Certificate requests: what a joining device sends the admin. Signed by the device key; under the
 * `token` policy it carries HMAC-SHA256(join token, "meshnet-join-v1" ‖ request bytes), which proves
 * knowledge of the token without revealing it. With a pre-authorised pool key (pool-keys.ts) it carries
 * the key's public key and its ed25519 signature over "meshnet-pool-key-proof-v1" ‖ the same bytes:
 * the admin keeps only a hash of that public key, so a signature, not an HMAC, is what it can check.
 * `decideCertRequest` is the admin's pure decision.
 *
 * Wire layout (big-endian), at most MAX_CERT_REQUEST_BYTES:
 *   kind u8 = 3 | version u8 = 1 | poolId 32 | devicePublicKey 32 | name: u8 len + UTF-8
 *   | requestedAt u64 ms | nonce 16 | proof flag u8 (0 none, 1 token HMAC, 2 pool key)
 *   | [flag 1: HMAC 32 | flag 2: key public key 32, key signature 64]
 *   | signature 64 (ed25519 by the device key over everything before it)
 *
 * Exports: CertRequest, CERT_REQUEST_VERSION, MAX_CERT_REQUEST_BYTES, createCertRequest, decodeCertRequest,
 * verifyCertRequestSignature, hasValidTokenProof, provenPoolKeyHash, RefuseReason, CertRequestContext, CertDecision,
 * decideCertRequest, certForRequest.
 */
import crypto from 'node:crypto'
import { signMemberCert, newSerial, type MemberCert, type Role } from './cert.js'
import { ByteReader, ByteWriter, MAX_NAME_BYTES, WIRE_KIND, concatBytes, fromHex, toHex } from './encoding.js'
import { BadSignatureError } from './errors.js'
import type { Device } from './identity.js'
import { nodeIdFromPublicKey } from './identity.js'
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, keyId, seal, sign, verifySignature } from './keys.js'
import { CLOCK_SKEW_MS, DEFAULT_CERT_LIFETIME_MS, REQUEST_MAX_AGE_MS, parseJoinToken, type PoolPolicy } from './policy.js'
import { checkPoolKey, isPoolKeyText, parsePoolKey, poolKeyHash, poolKeyPublicKey, type PoolKeyEntry, type PoolKeyRefusal } from './pool-keys.js'
import type { RevocationList } from './revocation.js'

export const CERT_REQUEST_VERSION = 1
const NONCE_BYTES = 16
const PROOF_BYTES = 32
const KEY_PROOF_BYTES = PUBLIC_KEY_BYTES + SIGNATURE_BYTES
export const MAX_CERT_REQUEST_BYTES = 2 + 32 + PUBLIC_KEY_BYTES + 1 + MAX_NAME_BYTES + 8 + NONCE_BYTES + 1 + KEY_PROOF_BYTES + SIGNATURE_BYTES
const KEY_PROOF_CONTEXT = new TextEncoder().encode('meshnet-pool-key-proof-v1')

export interface CertRequest {
  readonly version: typeof CERT_REQUEST_VERSION
  readonly poolId: string
  readonly nodeId: string
  readonly devicePublicKey: Uint8Array
  readonly name: string
  readonly requestedAt: number
  /** 32 hex digits; makes every request distinct */
  readonly nonce: string
  readonly tokenProof: Uint8Array | undefined
  /** a pool key's public key and its signature over KEY_PROOF_CONTEXT ‖ the proved bytes */
  readonly keyProof: { readonly publicKey: Uint8Array, readonly signature: Uint8Array } | undefined
  readonly bytes: Uint8Array
  readonly signedBytes: Uint8Array
  readonly signature: Uint8Array
}

function tokenProof (token: Uint8Array, provedBytes: Uint8Array): Uint8Array {
  return new Uint8Array(crypto.createHmac('sha256', token).update('meshnet-join-v1').update(provedBytes).digest())
}

/** A signed request from `device` for pool `poolId`; `token` is the join token or pool key text if the user gave one. */
export function createCertRequest (device: Device, poolId: string, now: number, token?: string, nonce = crypto.randomBytes(NONCE_BYTES)): CertRequest {
  const pool = fromHex(poolId, 32)
  if (pool === undefined || nonce.length !== NONCE_BYTES) throw new Error('createCertRequest: bad poolId or nonce')
  const proved = new ByteWriter()
    .u8(WIRE_KIND.certRequest).u8(CERT_REQUEST_VERSION)
    .bytes(pool).bytes(device.publicKey).shortString(device.name).u64(now).bytes(nonce)
    .finish()
  const w = new ByteWriter().bytes(proved)
  if (token === undefined) w.u8(0)
  else if (isPoolKeyText(token)) {
    const seed = parsePoolKey(token)
    w.u8(2).bytes(poolKeyPublicKey(seed)).bytes(sign(concatBytes(KEY_PROOF_CONTEXT, proved), seed))
  } else w.u8(1).bytes(tokenProof(parseJoinToken(token), proved))
  return decodeCertRequest(seal(w.finish(), device.privateKey))
}

/** Strict decode: size bound first, every field well-formed, nothing left over. Signature not checked. */
export function decodeCertRequest (input: Uint8Array): CertRequest {
  const r: ByteReader = ByteReader.open(input, 'certificate request', MAX_CERT_REQUEST_BYTES, WIRE_KIND.certRequest, CERT_REQUEST_VERSION)
  const poolId = toHex(r.bytes(32, 'poolId'))
  const devicePublicKey = r.bytes(PUBLIC_KEY_BYTES, 'devicePublicKey')
  const name = r.shortString('name')
  const requestedAt = r.u64('requestedAt')
  const nonce = toHex(r.bytes(NONCE_BYTES, 'nonce'))
  const flag = r.u8('proof flag')
  if (flag > 2) r.fail('unknown proof flag')
  const proof = flag === 1 ? r.bytes(PROOF_BYTES, 'proof') : undefined
  const keyProof = flag === 2 ? { publicKey: r.bytes(PUBLIC_KEY_BYTES, 'key public key'), signature: r.bytes(SIGNATURE_BYTES, 'key signature') } : undefined
  const signed = r.signatureTail(SIGNATURE_BYTES)
  let nodeId: string
  try { nodeId = nodeIdFromPublicKey(devicePublicKey) } catch { r.fail('devicePublicKey is not an ed25519 key') }
  return {
    version: CERT_REQUEST_VERSION, poolId, nodeId, devicePublicKey, name, requestedAt, nonce, tokenProof: proof, keyProof, ...signed
  }
}

export function verifyCertRequestSignature (req: CertRequest): void {
  if (!verifySignature(req.signature, req.signedBytes, req.devicePublicKey)) throw new BadSignatureError('certificate request')
}

/** Whether the request proves knowledge of `token` (constant-time comparison). */
export function hasValidTokenProof (req: CertRequest, token: string): boolean {
  if (req.tokenProof === undefined) return false
  // the proof covers everything before the proof flag byte
  const expected = tokenProof(parseJoinToken(token), provedBytes(req))
  return crypto.timingSafeEqual(expected, req.tokenProof)
}

/** The bytes both proofs cover: everything before the proof flag byte. */
function provedBytes (req: CertRequest): Uint8Array {
  const proofLength = req.tokenProof !== undefined ? PROOF_BYTES : req.keyProof !== undefined ? KEY_PROOF_BYTES : 0
  return req.signedBytes.subarray(0, req.signedBytes.length - 1 - proofLength)
}

/** The hash of the pool key the request proves, or undefined if its key signature does not verify. */
export function provenPoolKeyHash (req: CertRequest): string | undefined {
  if (req.keyProof === undefined) return undefined
  const ok = verifySignature(req.keyProof.signature, concatBytes(KEY_PROOF_CONTEXT, provedBytes(req)), req.keyProof.publicKey)
  return ok ? poolKeyHash(req.keyProof.publicKey) : undefined
}

/** Why an admin refuses a request; closed list, counted by the agent. */
export type RefuseReason = 'wrong-pool' | 'bad-signature' | 'stale' | 'revoked' | 'rejected' | 'missing-token' | 'bad-token' | 'bad-key-proof' | PoolKeyRefusal

/** What the admin's decision needs; all from the admin's pool record and root key. */
export interface CertRequestContext {
  readonly poolId: string
  readonly rootPrivateKey: Uint8Array
  readonly rootPublicKey: Uint8Array
  readonly policy: PoolPolicy
  readonly joinToken: string
  /** the pool's pre-authorised keys (pool-keys.ts); none when absent */
  readonly poolKeys?: readonly PoolKeyEntry[]
  readonly revocation?: RevocationList | undefined
  /** node ids the admin already certified and did not revoke: renewals need no token or approval */
  readonly memberNodeIds: ReadonlySet<string>
  /** node ids the admin rejected with `pool-reject` */
  readonly rejectedNodeIds: ReadonlySet<string>
  readonly certLifetimeMs?: number
}

export type CertDecision =
  /** `poolKey`: the hash of the pool key that admitted it, for the caller to record as spent */
  | { readonly kind: 'issue', readonly cert: MemberCert, readonly poolKey?: string }
  | { readonly kind: 'pending' }
  | { readonly kind: 'refuse', readonly reason: RefuseReason }

/** The member certificate the admin issues for a request (roles: member). */
export function certForRequest (req: CertRequest, ctx: Pick<CertRequestContext, 'poolId' | 'rootPrivateKey' | 'rootPublicKey' | 'certLifetimeMs'>, now: number, serial = newSerial(), roles: readonly Role[] = ['member']): MemberCert {
  return signMemberCert({
    version: 1,
    poolId: ctx.poolId,
    nodeId: req.nodeId,
    devicePublicKey: req.devicePublicKey,
    name: req.name,
    roles,
    serial,
    notBefore: Math.max(0, now - CLOCK_SKEW_MS),
    notAfter: now + (ctx.certLifetimeMs ?? DEFAULT_CERT_LIFETIME_MS),
    issuerKeyId: keyId(ctx.rootPublicKey)
  }, ctx.rootPrivateKey)
}

/**
 * The admin's decision on a decoded request, by the pool's policy. Pure apart from the random serial
 * (pass one to make it deterministic). Checks in order: pool, signature, freshness, revocation,
 * rejection, renewal of a known member, a pool key (pre-authorised: signed under every policy), then
 * the policy.
 */
export function decideCertRequest (req: CertRequest, ctx: CertRequestContext, now: number, serial = newSerial()): CertDecision {
  const refuse = (reason: RefuseReason): CertDecision => ({ kind: 'refuse', reason })
  if (req.poolId !== ctx.poolId) return refuse('wrong-pool')
  if (!verifySignature(req.signature, req.signedBytes, req.devicePublicKey)) return refuse('bad-signature')
  if (Math.abs(now - req.requestedAt) > REQUEST_MAX_AGE_MS) return refuse('stale')
  if (ctx.revocation !== undefined && ctx.revocation.nodeIds.includes(req.nodeId)) return refuse('revoked')
  if (ctx.rejectedNodeIds.has(req.nodeId)) return refuse('rejected')
  const issue = (): CertDecision => ({ kind: 'issue', cert: certForRequest(req, ctx, now, serial) })
  if (ctx.memberNodeIds.has(req.nodeId)) return issue()
  if (req.keyProof !== undefined) {
    const hash = provenPoolKeyHash(req)
    if (hash === undefined) return refuse('bad-key-proof')
    const key = checkPoolKey(ctx.poolKeys ?? [], hash, req.nodeId, now)
    if (typeof key === 'string') return refuse(key)
    return { kind: 'issue', cert: certForRequest(req, ctx, now, serial), poolKey: key.hash }
  }
  switch (ctx.policy) {
    case 'open': return issue()
    case 'manual': return { kind: 'pending' }
    case 'token':
      if (req.tokenProof === undefined) return refuse('missing-token')
      return hasValidTokenProof(req, ctx.joinToken) ? issue() : refuse('bad-token')
  }
}
