/**
 * The part of STUN (RFC 5389) mesh uses: Binding requests and success responses over UDP, with
 * XOR-MAPPED-ADDRESS (where the server saw the request come from) and RFC 5780's OTHER-ADDRESS
 * (the server's second port, so one server shows whether a NAT maps per destination). IPv4 only.
 * No authentication, no FINGERPRINT: the answer is a hint about our own NAT, never trusted for
 * identity. A pure codec: hostile packets decode to a drop reason, never an exception.
 *
 * (npm's `stun` 2.x, last released 2020, pulls in `ip` 1.x and `parse-url` 5 with known advisories;
 * a Binding request and its answer are a few dozen bytes, so mesh keeps its own.)
 *
 * Exports: Endpoint, StunMessage, StunDropReason, StunDecoded, MAX_STUN_BYTES, STUN_HEADER_BYTES,
 * decodeStun, encodeBindingRequest, encodeBindingResponse, txKey.
 */
import net from 'node:net'

export interface Endpoint { readonly address: string, readonly port: number }

export type StunMessage =
  | { readonly kind: 'binding-request', readonly txId: Uint8Array }
  | { readonly kind: 'binding-response', readonly txId: Uint8Array, readonly mapped: Endpoint, readonly other: Endpoint | undefined }

/** Why a datagram was not taken, cheapest check first. */
export type StunDropReason =
  | 'oversized' // beyond MAX_STUN_BYTES
  | 'truncated' // shorter than a header, or than the length it declares
  | 'not-stun' // top bits set or no magic cookie: another protocol on the port
  | 'bad-length' // length not a multiple of 4, or not what the datagram holds
  | 'unsupported-type' // not a Binding request or success response
  | 'bad-attribute' // an attribute overruns the message, or a malformed address
  | 'no-address' // a response without a usable IPv4 (XOR-)MAPPED-ADDRESS

export type StunDecoded = { readonly ok: true, readonly message: StunMessage } | { readonly ok: false, readonly reason: StunDropReason }

export const STUN_HEADER_BYTES = 20
/** a Binding exchange is well under 100 bytes; RFC 5389 keeps UDP messages under the 576-byte path MTU */
export const MAX_STUN_BYTES = 548
const MAGIC_COOKIE = 0x2112a442
const BINDING_REQUEST = 0x0001
const BINDING_SUCCESS = 0x0101
const ATTR_MAPPED_ADDRESS = 0x0001
const ATTR_XOR_MAPPED_ADDRESS = 0x0020
const ATTR_OTHER_ADDRESS = 0x802c
const FAMILY_IPV4 = 0x01

/** A transaction id as a map key. */
export function txKey (txId: Uint8Array): string { return Buffer.from(txId).toString('hex') }

function header (type: number, bodyLength: number, txId: Uint8Array): Buffer {
  if (txId.length !== 12) throw new RangeError('a STUN transaction id is 12 bytes')
  const b = Buffer.alloc(STUN_HEADER_BYTES + bodyLength)
  b.writeUInt16BE(type, 0)
  b.writeUInt16BE(bodyLength, 2)
  b.writeUInt32BE(MAGIC_COOKIE, 4)
  b.set(txId, 8)
  return b
}

export function encodeBindingRequest (txId: Uint8Array): Uint8Array {
  return header(BINDING_REQUEST, 0, txId)
}

function ipv4Bytes (address: string): number {
  if (!net.isIPv4(address)) throw new RangeError(`${address} is not an IPv4 address`)
  return address.split('.').reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0)
}

function ipv4Text (n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

/** An address attribute (8-byte IPv4 value); XORed with the cookie for XOR-MAPPED-ADDRESS. */
function writeAddress (b: Buffer, at: number, type: number, e: Endpoint, xor: boolean): void {
  b.writeUInt16BE(type, at)
  b.writeUInt16BE(8, at + 2)
  b.writeUInt8(0, at + 4)
  b.writeUInt8(FAMILY_IPV4, at + 5)
  b.writeUInt16BE(xor ? (e.port ^ (MAGIC_COOKIE >>> 16)) : e.port, at + 6)
  b.writeUInt32BE(xor ? (ipv4Bytes(e.address) ^ MAGIC_COOKIE) >>> 0 : ipv4Bytes(e.address), at + 8)
}

/** A success response telling the requester where its request came from (and our second port). */
export function encodeBindingResponse (txId: Uint8Array, mapped: Endpoint, other?: Endpoint): Uint8Array {
  const b = header(BINDING_SUCCESS, other === undefined ? 12 : 24, txId)
  writeAddress(b, STUN_HEADER_BYTES, ATTR_XOR_MAPPED_ADDRESS, mapped, true)
  if (other !== undefined) writeAddress(b, STUN_HEADER_BYTES + 12, ATTR_OTHER_ADDRESS, other, false)
  return b
}

/** An IPv4 address attribute's value; undefined for another family (IPv6: not used by mesh). */
function readAddress (v: Buffer, xor: boolean): Endpoint | undefined | 'bad' {
  if (v.length < 4) return 'bad'
  const family = v.readUInt8(1)
  if (family !== FAMILY_IPV4) return family === 0x02 ? undefined : 'bad'
  if (v.length !== 8) return 'bad'
  const port = xor ? v.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16) : v.readUInt16BE(2)
  const address = ipv4Text(xor ? (v.readUInt32BE(4) ^ MAGIC_COOKIE) >>> 0 : v.readUInt32BE(4))
  return { address, port }
}

export function decodeStun (packet: Uint8Array): StunDecoded {
  const drop = (reason: StunDropReason): StunDecoded => ({ ok: false, reason })
  if (packet.length > MAX_STUN_BYTES) return drop('oversized')
  if (packet.length < STUN_HEADER_BYTES) return drop('truncated')
  const b = Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength)
  const type = b.readUInt16BE(0)
  if ((type & 0xc000) !== 0 || b.readUInt32BE(4) !== MAGIC_COOKIE) return drop('not-stun')
  const length = b.readUInt16BE(2)
  if (length % 4 !== 0) return drop('bad-length')
  if (STUN_HEADER_BYTES + length > b.length) return drop('truncated')
  if (STUN_HEADER_BYTES + length !== b.length) return drop('bad-length')
  const txId = Uint8Array.from(b.subarray(8, 20))
  if (type === BINDING_REQUEST) return { ok: true, message: { kind: 'binding-request', txId } }
  if (type !== BINDING_SUCCESS) return drop('unsupported-type')
  let xorMapped: Endpoint | undefined
  let mapped: Endpoint | undefined
  let other: Endpoint | undefined
  for (let at = STUN_HEADER_BYTES; at < b.length;) {
    if (at + 4 > b.length) return drop('bad-attribute')
    const attr = b.readUInt16BE(at)
    const len = b.readUInt16BE(at + 2)
    const end = at + 4 + len
    if (end > b.length) return drop('bad-attribute')
    const v = b.subarray(at + 4, end)
    if (attr === ATTR_XOR_MAPPED_ADDRESS || attr === ATTR_MAPPED_ADDRESS || attr === ATTR_OTHER_ADDRESS) {
      const e = readAddress(v, attr === ATTR_XOR_MAPPED_ADDRESS)
      if (e === 'bad') return drop('bad-attribute')
      if (attr === ATTR_XOR_MAPPED_ADDRESS) xorMapped ??= e
      else if (attr === ATTR_MAPPED_ADDRESS) mapped ??= e
      else other ??= e
    }
    at = end + ((4 - (len % 4)) % 4) // values are padded to 4 bytes
  }
  const found = xorMapped ?? mapped
  if (found === undefined) return drop('no-address')
  return { ok: true, message: { kind: 'binding-response', txId, mapped: found, other } }
}
