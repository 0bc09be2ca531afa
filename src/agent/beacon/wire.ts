/**
 * The LAN beacon wire format, version 1. Numbers here are protocol: only append new types, never
 * renumber or reorder. Every field has a fixed place or an explicit length, so a receiver can bound
 * and reject a packet before it verifies anything.
 *
 *   offset  size  field
 *   0       2     magic "MB" (0x4d 0x42): cheap rejection of stray traffic on the port
 *   2       1     version (1)
 *   3       1     type: 1 announce, 2 cert-request, 3 cert-response
 *   4       32    pool id (SHA-256, raw)
 *   36      32    sender's device public key (ed25519, raw)
 *   68      8     sequence number (u64 BE, < 2^53; grows across restarts, see BeaconSequence)
 *   76      8     timestamp, ms since the epoch (u64 BE)
 *   84      2     body length N (u16 BE)
 *   86      N     body (per type, below)
 *   86+N    64    ed25519 signature by the sender over bytes [0, 86+N)
 *
 * Bodies:
 *   announce       u16 cert length + member certificate (pool root-signed, as src/pool encodes it);
 *                  u8 count + capabilities (each u8 length + ASCII);
 *                  u8 count + libp2p listen addresses (each u8 length + UTF-8 multiaddr string)
 *   cert-request   u16 length + certificate request (device-signed, as src/pool encodes it)
 *   cert-response  32 target device public key; u16 cert length + member certificate
 */

export const BEACON_MAGIC = 0x4d42
export const BEACON_VERSION = 1
/** Under the 1280-byte IPv6 minimum MTU less headers, so no beacon is ever fragmented. */
export const MAX_BEACON_BYTES = 1200
export const HEADER_BYTES = 86
export const SIGNATURE_BYTES = 64
export const MIN_BEACON_BYTES = HEADER_BYTES + SIGNATURE_BYTES
const MAX_CAPABILITIES = 16
const MAX_LISTEN_ADDRS = 8

export const BEACON_TYPES = { announce: 1, 'cert-request': 2, 'cert-response': 3 } as const
export type BeaconType = keyof typeof BEACON_TYPES

export interface BeaconHeader {
  poolId: Uint8Array // 32 bytes
  sender: Uint8Array // 32 bytes, the device public key
  seq: number
  timestampMs: number
}

export type BeaconBody =
  | { type: 'announce', cert: Uint8Array, capabilities: string[], listenAddrs: string[] }
  | { type: 'cert-request', request: Uint8Array }
  | { type: 'cert-response', target: Uint8Array, cert: Uint8Array }

export type Beacon = BeaconHeader & BeaconBody

/** A decoded beacon with the exact bytes its signature covers (never re-encoded before verifying). */
export interface DecodedBeacon {
  beacon: Beacon
  signed: Uint8Array
  signature: Uint8Array
}

/** Why bytes are not a beacon; cheap structural reasons only (see receive.ts for the rest). */
export type DecodeFailure = 'oversized' | 'truncated' | 'bad-magic' | 'bad-version' | 'unknown-type' | 'malformed'

export class BeaconTooLargeError extends RangeError {}

class Malformed extends Error {}

class Reader {
  private off: number
  constructor (private readonly buf: Buffer, start: number, private readonly end: number) { this.off = start }
  u8 (): number { this.need(1); return this.buf[this.off++] as number }
  u16 (): number { this.need(2); const v = this.buf.readUInt16BE(this.off); this.off += 2; return v }
  bytes (n: number): Uint8Array { this.need(n); const v = this.buf.subarray(this.off, this.off + n); this.off += n; return new Uint8Array(v) }
  ascii (n: number): string {
    const b = this.bytes(n)
    for (const c of b) if (c < 0x21 || c > 0x7e) throw new Malformed('not printable ASCII')
    return Buffer.from(b).toString('latin1')
  }
  utf8 (n: number): string {
    const b = this.bytes(n)
    try { return new TextDecoder('utf-8', { fatal: true }).decode(b) } catch { throw new Malformed('bad UTF-8') }
  }
  done (): void { if (this.off !== this.end) throw new Malformed('trailing bytes') }
  private need (n: number): void { if (this.off + n > this.end) throw new Malformed('truncated') }
}

/** Structural decoding only: no signature or certificate checks (receive.ts does those, in order). */
export function decodeBeacon (data: Uint8Array): DecodedBeacon | DecodeFailure {
  if (data.length > MAX_BEACON_BYTES) return 'oversized'
  if (data.length < MIN_BEACON_BYTES) return 'truncated'
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  if (buf.readUInt16BE(0) !== BEACON_MAGIC) return 'bad-magic'
  if (buf[2] !== BEACON_VERSION) return 'bad-version'
  const typeCode = buf[3] as number
  const type = (Object.keys(BEACON_TYPES) as BeaconType[]).find((t) => BEACON_TYPES[t] === typeCode)
  if (type === undefined) return 'unknown-type'
  const bodyLength = buf.readUInt16BE(84)
  if (buf.length !== HEADER_BYTES + bodyLength + SIGNATURE_BYTES) return 'malformed'
  const seq = buf.readBigUInt64BE(68)
  const ts = buf.readBigUInt64BE(76)
  if (seq > BigInt(Number.MAX_SAFE_INTEGER) || ts > BigInt(Number.MAX_SAFE_INTEGER)) return 'malformed'
  const header: BeaconHeader = {
    poolId: new Uint8Array(buf.subarray(4, 36)),
    sender: new Uint8Array(buf.subarray(36, 68)),
    seq: Number(seq),
    timestampMs: Number(ts)
  }
  let body: BeaconBody
  try {
    body = decodeBody(type, new Reader(buf, HEADER_BYTES, HEADER_BYTES + bodyLength))
  } catch (err) {
    if (err instanceof Malformed) return 'malformed'
    throw err
  }
  const signedEnd = HEADER_BYTES + bodyLength
  return {
    beacon: { ...header, ...body },
    signed: new Uint8Array(buf.subarray(0, signedEnd)),
    signature: new Uint8Array(buf.subarray(signedEnd, signedEnd + SIGNATURE_BYTES))
  }
}

function decodeBody (type: BeaconType, r: Reader): BeaconBody {
  let body: BeaconBody
  switch (type) {
    case 'announce': {
      const cert = r.bytes(r.u16())
      const capabilities = list(r, MAX_CAPABILITIES, (n) => r.ascii(n))
      const listenAddrs = list(r, MAX_LISTEN_ADDRS, (n) => r.utf8(n))
      body = { type, cert, capabilities, listenAddrs }
      break
    }
    case 'cert-request':
      body = { type, request: r.bytes(r.u16()) }
      break
    case 'cert-response': {
      const target = r.bytes(32)
      body = { type, target, cert: r.bytes(r.u16()) }
      break
    }
  }
  r.done()
  return body
}

function list (r: Reader, max: number, item: (length: number) => string): string[] {
  const count = r.u8()
  if (count > max) throw new Malformed('too many items')
  const out: string[] = []
  for (let i = 0; i < count; i++) {
    const length = r.u8()
    if (length === 0) throw new Malformed('empty item')
    out.push(item(length))
  }
  return out
}

/** The bytes a beacon's signature covers. Throws BeaconTooLargeError when it would not fit in one datagram. */
export function encodeUnsigned (beacon: Beacon): Uint8Array {
  const parts: Uint8Array[] = []
  const u8 = (v: number): void => { parts.push(Uint8Array.of(v)) }
  const u16 = (v: number): void => { const b = Buffer.alloc(2); b.writeUInt16BE(v); parts.push(b) }
  const bytes16 = (b: Uint8Array): void => { if (b.length > 0xffff) throw new BeaconTooLargeError('field too long'); u16(b.length); parts.push(b) }
  const strings = (items: string[], max: number, enc: BufferEncoding): void => {
    if (items.length > max) throw new BeaconTooLargeError(`at most ${max} items`)
    u8(items.length)
    for (const s of items) {
      const b = Buffer.from(s, enc)
      if (b.length === 0 || b.length > 255) throw new BeaconTooLargeError(`item length ${b.length} is not 1..255`)
      u8(b.length); parts.push(b)
    }
  }
  switch (beacon.type) {
    case 'announce':
      bytes16(beacon.cert)
      strings(beacon.capabilities, MAX_CAPABILITIES, 'latin1')
      strings(beacon.listenAddrs, MAX_LISTEN_ADDRS, 'utf8')
      break
    case 'cert-request':
      bytes16(beacon.request)
      break
    case 'cert-response':
      if (beacon.target.length !== 32) throw new RangeError('target is a 32-byte public key')
      parts.push(beacon.target)
      bytes16(beacon.cert)
      break
  }
  const body = Buffer.concat(parts)
  if (HEADER_BYTES + body.length + SIGNATURE_BYTES > MAX_BEACON_BYTES) {
    throw new BeaconTooLargeError(`a ${beacon.type} beacon of ${HEADER_BYTES + body.length + SIGNATURE_BYTES} bytes exceeds ${MAX_BEACON_BYTES}`)
  }
  if (beacon.poolId.length !== 32 || beacon.sender.length !== 32) throw new RangeError('pool id and sender are 32 bytes')
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt16BE(BEACON_MAGIC, 0)
  header[2] = BEACON_VERSION
  header[3] = BEACON_TYPES[beacon.type]
  header.set(beacon.poolId, 4)
  header.set(beacon.sender, 36)
  header.writeBigUInt64BE(BigInt(beacon.seq), 68)
  header.writeBigUInt64BE(BigInt(beacon.timestampMs), 76)
  header.writeUInt16BE(body.length, 84)
  return new Uint8Array(Buffer.concat([header, body]))
}

/** Encode and sign: the datagram to send. */
export function encodeBeacon (beacon: Beacon, sign: (message: Uint8Array) => Uint8Array): Uint8Array {
  const unsigned = encodeUnsigned(beacon)
  return new Uint8Array(Buffer.concat([unsigned, sign(unsigned)]))
}

/**
 * Sequence numbers for one sender. Receivers keep the highest number seen per sender, so a
 * restarted agent must not start from zero: start from the clock in microseconds (an agent sends
 * far fewer than a million beacons a second), which stays below 2^53 until the year 2255.
 */
export class BeaconSequence {
  private next: number
  constructor (nowMs: number) { this.next = Math.floor(nowMs) * 1000 }
  take (): number { return this.next++ }
}
