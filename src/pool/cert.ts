/**
 * Member certificates: plain data signed by the pool root key over ONE deterministic binary encoding.
 * Decoders keep the exact received bytes and signatures are checked over them, never a re-encoding.
 *
 * Wire layout (big-endian), 228 bytes at most, so it fits a UDP beacon with room to spare:
 *   kind u8 = 1 | version u8 = 1 | poolId 32 | devicePublicKey 32 | name: u8 len + UTF-8 (1..64)
 *   | roles u8 (bit 0 admin, bit 1 member) | serial 8 | notBefore u64 ms | notAfter u64 ms
 *   | issuerKeyId 8 | signature 64 (ed25519 by the root key over everything before it)
 *
 * Exports: Role, UnsignedMemberCert, MemberCert, PoolTrust, MAX_CERT_BYTES, CERT_VERSION,
 * encodeUnsignedMemberCert, signMemberCert, decodeMemberCert, verifyMemberCert, verifyMemberCertBytes,
 * expectCertNode, newSerial.
 */
import crypto from 'node:crypto'
import { ByteReader, ByteWriter, MAX_NAME_BYTES, WIRE_KIND, fromHex, toHex, validateName } from './encoding.js'
import { BadSignatureError, ExpiredError, NotYetValidError, RevokedError, UnknownIssuerError, WrongNodeError, WrongPoolError } from './errors.js'
import { nodeIdFromPublicKey } from './identity.js'
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, keyId, publicKeyOf, seal, verifySignature } from './keys.js'
import { isRevoked, type RevocationList } from './revocation.js'

export type Role = 'admin' | 'member'
const ROLE_BITS: Record<Role, number> = { admin: 1, member: 2 }

export const CERT_VERSION = 1
export const MAX_CERT_BYTES = 2 + 32 + PUBLIC_KEY_BYTES + 1 + MAX_NAME_BYTES + 1 + 8 + 8 + 8 + 8 + SIGNATURE_BYTES

export interface UnsignedMemberCert {
  readonly version: typeof CERT_VERSION
  /** 64 hex digits */
  readonly poolId: string
  /** PeerId string; always the one derived from devicePublicKey */
  readonly nodeId: string
  /** raw ed25519, 32 bytes */
  readonly devicePublicKey: Uint8Array
  readonly name: string
  /** non-empty, in the order admin, member */
  readonly roles: readonly Role[]
  /** 16 hex digits, random per certificate */
  readonly serial: string
  /** ms since the epoch */
  readonly notBefore: number
  readonly notAfter: number
  /** keyId() of the root key that signs it, 16 hex digits */
  readonly issuerKeyId: string
}

export interface MemberCert extends UnsignedMemberCert {
  /** the whole encoding as signed or received: signedBytes ‖ signature */
  readonly bytes: Uint8Array
  readonly signedBytes: Uint8Array
  readonly signature: Uint8Array
}

/** What a verifier trusts for one pool. */
export interface PoolTrust {
  readonly poolId: string
  readonly rootPublicKey: Uint8Array
  /** the newest verified revocation list held, if any */
  readonly revocation?: RevocationList | undefined
}

export function newSerial (): string { return crypto.randomBytes(8).toString('hex') }

function need (ok: boolean, problem: string): void {
  // an unsigned cert is built by our own code: a bad field is a bug, not bad input
  if (!ok) throw new Error(`invalid certificate field: ${problem}`)
}

export function encodeUnsignedMemberCert (c: UnsignedMemberCert): Uint8Array {
  const poolId = fromHex(c.poolId, 32); need(poolId !== undefined, 'poolId')
  const serial = fromHex(c.serial, 8); need(serial !== undefined, 'serial')
  const issuer = fromHex(c.issuerKeyId, 8); need(issuer !== undefined, 'issuerKeyId')
  need(c.devicePublicKey.length === PUBLIC_KEY_BYTES && nodeIdFromPublicKey(c.devicePublicKey) === c.nodeId, 'nodeId/devicePublicKey')
  need(validateName(c.name) === undefined, 'name')
  need(Number.isSafeInteger(c.notBefore) && Number.isSafeInteger(c.notAfter) && c.notBefore >= 0 && c.notBefore < c.notAfter, 'validity')
  need(c.roles.length > 0 && new Set(c.roles).size === c.roles.length, 'roles')
  const roles = c.roles.reduce((bits, r) => bits | ROLE_BITS[r], 0)
  return new ByteWriter()
    .u8(WIRE_KIND.memberCert).u8(CERT_VERSION)
    .bytes(poolId as Uint8Array).bytes(c.devicePublicKey).shortString(c.name)
    .u8(roles).bytes(serial as Uint8Array).u64(c.notBefore).u64(c.notAfter).bytes(issuer as Uint8Array)
    .finish()
}

/** Seal a certificate with the root private seed; the signer's key must be the named issuer. */
export function signMemberCert (unsigned: UnsignedMemberCert, rootPrivateKey: Uint8Array): MemberCert {
  need(keyId(publicKeyOf(rootPrivateKey)) === unsigned.issuerKeyId, 'issuerKeyId is not the signing key')
  return decodeMemberCert(seal(encodeUnsignedMemberCert(unsigned), rootPrivateKey))
}

/** Strict decode: size bound first, every field well-formed, nothing left over. Signature not checked. */
export function decodeMemberCert (input: Uint8Array): MemberCert {
  const r: ByteReader = ByteReader.open(input, 'certificate', MAX_CERT_BYTES, WIRE_KIND.memberCert, CERT_VERSION)
  const poolId = toHex(r.bytes(32, 'poolId'))
  const devicePublicKey = r.bytes(PUBLIC_KEY_BYTES, 'devicePublicKey')
  const name = r.shortString('name')
  const roleBits = r.u8('roles')
  if (roleBits === 0 || (roleBits & ~3) !== 0) r.fail('roles has unknown bits')
  const roles = (Object.keys(ROLE_BITS) as Role[]).filter(role => (roleBits & ROLE_BITS[role]) !== 0)
  const serial = toHex(r.bytes(8, 'serial'))
  const notBefore = r.u64('notBefore')
  const notAfter = r.u64('notAfter')
  if (notAfter <= notBefore) r.fail('notAfter is not after notBefore')
  const issuerKeyId = toHex(r.bytes(8, 'issuerKeyId'))
  const signed = r.signatureTail(SIGNATURE_BYTES)
  let nodeId: string
  try { nodeId = nodeIdFromPublicKey(devicePublicKey) } catch { r.fail('devicePublicKey is not an ed25519 key') }
  return {
    version: CERT_VERSION, poolId, nodeId, devicePublicKey, name, roles, serial, notBefore, notAfter, issuerKeyId, ...signed
  }
}

/**
 * The checks, cheapest first, each with its own error: wrong pool, unknown issuer, revoked,
 * not yet valid, expired, bad signature (over the exact received bytes).
 */
export function verifyMemberCert (c: MemberCert, trust: PoolTrust, now: number): void {
  if (c.poolId !== trust.poolId) throw new WrongPoolError('certificate', c.poolId, trust.poolId)
  if (c.issuerKeyId !== keyId(trust.rootPublicKey)) throw new UnknownIssuerError('certificate', c.issuerKeyId)
  if (trust.revocation !== undefined && isRevoked(trust.revocation, c.serial, c.nodeId)) throw new RevokedError(c.serial, c.nodeId)
  if (now < c.notBefore) throw new NotYetValidError(c.notBefore)
  if (now >= c.notAfter) throw new ExpiredError(c.notAfter)
  if (!verifySignature(c.signature, c.signedBytes, trust.rootPublicKey)) throw new BadSignatureError('certificate')
}

/** decodeMemberCert then verifyMemberCert: for bytes from the network or disk. */
export function verifyMemberCertBytes (bytes: Uint8Array, trust: PoolTrust, now: number): MemberCert {
  const cert = decodeMemberCert(bytes)
  verifyMemberCert(cert, trust, now)
  return cert
}

/** The certificate must name this node (e.g. the PeerId proven in the libp2p Noise handshake). */
export function expectCertNode (c: MemberCert, nodeId: string): void {
  if (c.nodeId !== nodeId) throw new WrongNodeError(c.nodeId, nodeId)
}
