/**
 * Revocation lists: root-signed, with a sequence number that only increases. A newer list replaces the
 * held one; an older one is refused (it would un-revoke members), an equal one changes nothing.
 *
 * Wire layout (big-endian), at most MAX_REVOCATION_BYTES:
 *   kind u8 = 2 | version u8 = 1 | poolId 32 | issuerKeyId 8 | sequence u64 | issuedAt u64 ms
 *   | serial count u16 | serials 8 each, strictly ascending
 *   | node count u16 | device public keys 32 each, strictly ascending
 *   | signature 64 (ed25519 by the root key over everything before it)
 *
 * Exports: REVOCATION_VERSION, UnsignedRevocationList, RevocationList, RevocationTrust, MAX_REVOCATION_ENTRIES,
 * MAX_REVOCATION_BYTES, encodeUnsignedRevocationList, signRevocationList, decodeRevocationList,
 * verifyRevocationList, verifyRevocationListBytes, isNewerRevocationList, isRevoked.
 */
import { ByteReader, ByteWriter, WIRE_KIND, fromHex, toHex } from './encoding.js'
import { BadSignatureError, StaleRevocationError, UnknownIssuerError, WrongPoolError } from './errors.js'
import { nodeIdFromPublicKey, publicKeyFromNodeId } from './identity.js'
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, keyId, publicKeyOf, seal, verifySignature } from './keys.js'

export const REVOCATION_VERSION = 1
/** per list, of serials and of nodes each; keeps a list one gossip message */
export const MAX_REVOCATION_ENTRIES = 1000
export const MAX_REVOCATION_BYTES = 2 + 32 + 8 + 8 + 8 + 2 + 8 * MAX_REVOCATION_ENTRIES + 2 + PUBLIC_KEY_BYTES * MAX_REVOCATION_ENTRIES + SIGNATURE_BYTES

export interface UnsignedRevocationList {
  readonly version: typeof REVOCATION_VERSION
  readonly poolId: string
  readonly issuerKeyId: string
  /** starts at 1; each new list has a higher one */
  readonly sequence: number
  readonly issuedAt: number
  /** certificate serials (16 hex), any order: the encoding sorts them */
  readonly serials: readonly string[]
  /** node ids whose every certificate is revoked; any order */
  readonly nodeIds: readonly string[]
}

export interface RevocationList extends UnsignedRevocationList {
  readonly bytes: Uint8Array
  readonly signedBytes: Uint8Array
  readonly signature: Uint8Array
}

export interface RevocationTrust { readonly poolId: string, readonly rootPublicKey: Uint8Array }

function need (ok: boolean, problem: string): void {
  if (!ok) throw new Error(`invalid revocation list field: ${problem}`)
}

function sortedUnique (items: Uint8Array[]): Uint8Array[] {
  const byHex = new Map(items.map(b => [toHex(b), b]))
  return [...byHex.keys()].sort().map(k => byHex.get(k) as Uint8Array)
}

export function encodeUnsignedRevocationList (l: UnsignedRevocationList): Uint8Array {
  const poolId = fromHex(l.poolId, 32); need(poolId !== undefined, 'poolId')
  const issuer = fromHex(l.issuerKeyId, 8); need(issuer !== undefined, 'issuerKeyId')
  need(Number.isSafeInteger(l.sequence) && l.sequence >= 1 && Number.isSafeInteger(l.issuedAt) && l.issuedAt >= 0, 'sequence/issuedAt')
  const serials = sortedUnique(l.serials.map(s => { const b = fromHex(s, 8); need(b !== undefined, 'serial'); return b as Uint8Array }))
  const nodes = sortedUnique(l.nodeIds.map(publicKeyFromNodeId))
  need(serials.length <= MAX_REVOCATION_ENTRIES && nodes.length <= MAX_REVOCATION_ENTRIES, 'too many entries')
  const w = new ByteWriter()
    .u8(WIRE_KIND.revocationList).u8(REVOCATION_VERSION)
    .bytes(poolId as Uint8Array).bytes(issuer as Uint8Array).u64(l.sequence).u64(l.issuedAt)
    .u16(serials.length)
  for (const s of serials) w.bytes(s)
  w.u16(nodes.length)
  for (const n of nodes) w.bytes(n)
  return w.finish()
}

export function signRevocationList (unsigned: UnsignedRevocationList, rootPrivateKey: Uint8Array): RevocationList {
  need(keyId(publicKeyOf(rootPrivateKey)) === unsigned.issuerKeyId, 'issuerKeyId is not the signing key')
  return decodeRevocationList(seal(encodeUnsignedRevocationList(unsigned), rootPrivateKey))
}

function readAscending (r: ByteReader, count: number, size: number, field: string): Uint8Array[] {
  const out: Uint8Array[] = []
  let prev = ''
  for (let i = 0; i < count; i++) {
    const b = r.bytes(size, field)
    const hex = toHex(b)
    // one encoding per list: sorted, no duplicates
    if (hex <= prev) r.fail(`${field} not strictly ascending`)
    prev = hex
    out.push(b)
  }
  return out
}

/** Strict decode: size bound first, sorted unique entries, nothing left over. Signature not checked. */
export function decodeRevocationList (input: Uint8Array): RevocationList {
  const r: ByteReader = ByteReader.open(input, 'revocation list', MAX_REVOCATION_BYTES, WIRE_KIND.revocationList, REVOCATION_VERSION)
  const poolId = toHex(r.bytes(32, 'poolId'))
  const issuerKeyId = toHex(r.bytes(8, 'issuerKeyId'))
  const sequence = r.u64('sequence')
  if (sequence < 1) r.fail('sequence must be at least 1')
  const issuedAt = r.u64('issuedAt')
  const nSerials = r.u16('serial count')
  if (nSerials > MAX_REVOCATION_ENTRIES) r.fail('too many serials')
  const serials = readAscending(r, nSerials, 8, 'serials').map(toHex)
  const nNodes = r.u16('node count')
  if (nNodes > MAX_REVOCATION_ENTRIES) r.fail('too many nodes')
  const keys = readAscending(r, nNodes, PUBLIC_KEY_BYTES, 'nodes')
  const signed = r.signatureTail(SIGNATURE_BYTES)
  let nodeIds: string[]
  try { nodeIds = keys.map(nodeIdFromPublicKey) } catch { r.fail('a node is not an ed25519 key') }
  return {
    version: REVOCATION_VERSION, poolId, issuerKeyId, sequence, issuedAt, serials, nodeIds, ...signed
  }
}

/** Wrong pool, unknown issuer, bad signature: in that order. */
export function verifyRevocationList (l: RevocationList, trust: RevocationTrust): void {
  if (l.poolId !== trust.poolId) throw new WrongPoolError('revocation list', l.poolId, trust.poolId)
  if (l.issuerKeyId !== keyId(trust.rootPublicKey)) throw new UnknownIssuerError('revocation list', l.issuerKeyId)
  if (!verifySignature(l.signature, l.signedBytes, trust.rootPublicKey)) throw new BadSignatureError('revocation list')
}

export function verifyRevocationListBytes (bytes: Uint8Array, trust: RevocationTrust): RevocationList {
  const l = decodeRevocationList(bytes)
  verifyRevocationList(l, trust)
  return l
}

/**
 * Whether a verified `incoming` list should replace `held`: true if newer (or none held), false if the
 * same sequence; StaleRevocationError if older.
 */
export function isNewerRevocationList (held: RevocationList | undefined, incoming: RevocationList): boolean {
  if (held === undefined) return true
  if (incoming.sequence < held.sequence) throw new StaleRevocationError(incoming.sequence, held.sequence)
  return incoming.sequence > held.sequence
}

export function isRevoked (l: RevocationList, serial: string, nodeId: string): boolean {
  return l.serials.includes(serial) || l.nodeIds.includes(nodeId)
}
