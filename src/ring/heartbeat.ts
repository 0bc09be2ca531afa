import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { concatBytes, toHex } from '../pool/encoding.js'
import type { Capacity } from './assign.js'
import type { NodeId } from './liveness.js'

/**
 * The heartbeat every member publishes on its pool's gossip topic, signed by its device key.
 * Binary, big-endian, fixed field order; the numbers are protocol, so only append.
 *
 *   u8  version (1)          u8  kind (1 = heartbeat)   u8 status (0 alive, 1 leaving)
 *   32  pool id               32  device public key (ed25519, raw)
 *   u64 incarnation           u64 seq                   u64 sentAtMs (informational only)
 *   u64 epoch                 32  ring hash
 *   u16 cores                 u32 memoryMiB             u32 matmulMflops
 *   u8 len + utf8 model       u8 count + (u8 len + utf8 multiaddr) × count
 *   64  ed25519 signature over "mesh-heartbeat-v1" ‖ every byte before it
 */
export const HEARTBEAT_VERSION = 2
const KIND_HEARTBEAT = 1
export const MAX_HEARTBEAT_BYTES = 2048
const MAX_MODEL_BYTES = 64
const MAX_ADDRS = 8
const MAX_ADDR_BYTES = 200
const SIG_BYTES = 64
const DOMAIN = new TextEncoder().encode('mesh-heartbeat-v1')

export type HeartbeatStatus = 'alive' | 'leaving'
const STATUS_CODES: readonly HeartbeatStatus[] = ['alive', 'leaving']

export interface Heartbeat {
  readonly poolId: string // 64 hex digits
  readonly publicKey: Uint8Array // 32 bytes
  readonly incarnation: number
  readonly seq: number
  readonly sentAtMs: number
  readonly status: HeartbeatStatus
  readonly epoch: number
  readonly ringHash: string // 64 hex digits, or '' before the first ring
  readonly capacity: Capacity
  /** the agent's resident memory, MiB: what the dashboard shows of each member */
  readonly residentMiB: number
  readonly model: string
  readonly addresses: readonly string[]
}

/** A decoded heartbeat whose signature has not been checked yet. */
export interface DecodedHeartbeat {
  readonly heartbeat: Heartbeat
  readonly nodeId: NodeId
  readonly signed: Uint8Array
  readonly signature: Uint8Array
}

/** Why a heartbeat was dropped; each is counted where status can show it. */
export type HeartbeatDropReason =
  | 'oversized' | 'truncated' | 'bad-version' | 'bad-kind' | 'malformed' | 'wrong-pool'
  | 'own' | 'not-member' | 'bad-signature' | 'stale-incarnation' | 'replay'

export class HeartbeatEncodeError extends Error {}

/** Encode and sign. Throws HeartbeatEncodeError for values that do not fit the format (a bug). */
export async function encodeHeartbeat (hb: Heartbeat, key: PrivateKey): Promise<Uint8Array> {
  const body = encodeBody(hb)
  const signature = await key.sign(concatBytes(DOMAIN, body))
  return concatBytes(body, signature)
}

function encodeBody (hb: Heartbeat): Uint8Array {
  const model = utf8(hb.model, MAX_MODEL_BYTES, 'model')
  if (hb.addresses.length > MAX_ADDRS) throw new HeartbeatEncodeError(`at most ${MAX_ADDRS} addresses`)
  const addrs = hb.addresses.map((a) => utf8(a, MAX_ADDR_BYTES, 'address'))
  const w = new Writer()
  w.u8(HEARTBEAT_VERSION); w.u8(KIND_HEARTBEAT); w.u8(STATUS_CODES.indexOf(hb.status))
  w.bytes(hex32(hb.poolId, 'pool id'))
  if (hb.publicKey.length !== 32) throw new HeartbeatEncodeError('public key must be 32 bytes')
  w.bytes(hb.publicKey)
  w.u64(hb.incarnation); w.u64(hb.seq); w.u64(hb.sentAtMs); w.u64(hb.epoch)
  w.bytes(hb.ringHash === '' ? new Uint8Array(32) : hex32(hb.ringHash, 'ring hash'))
  w.u16(hb.capacity.cores); w.u32(hb.capacity.memoryMiB); w.u32(hb.capacity.matmulMflops)
  w.u32(hb.residentMiB)
  w.u8(model.length); w.bytes(model)
  w.u8(addrs.length)
  for (const a of addrs) { w.u8(a.length); w.bytes(a) }
  return w.finish()
}

export type DecodeResult =
  | { readonly ok: true, readonly value: DecodedHeartbeat }
  | { readonly ok: false, readonly reason: HeartbeatDropReason }

/** Strict decode of untrusted bytes: size first, then structure. No signature check here. */
export function decodeHeartbeat (bytes: Uint8Array): DecodeResult {
  if (bytes.length > MAX_HEARTBEAT_BYTES) return { ok: false, reason: 'oversized' }
  const r = new Reader(bytes.subarray(0, Math.max(0, bytes.length - SIG_BYTES)))
  try {
    if (bytes.length < SIG_BYTES + 3) return { ok: false, reason: 'truncated' }
    if (r.u8() !== HEARTBEAT_VERSION) return { ok: false, reason: 'bad-version' }
    if (r.u8() !== KIND_HEARTBEAT) return { ok: false, reason: 'bad-kind' }
    const status = STATUS_CODES[r.u8()]
    if (status === undefined) return { ok: false, reason: 'malformed' }
    const poolId = toHex(r.bytes(32))
    const publicKey = r.bytes(32)
    const incarnation = r.u64(); const seq = r.u64(); const sentAtMs = r.u64(); const epoch = r.u64()
    const hashBytes = r.bytes(32)
    const ringHash = hashBytes.every((b) => b === 0) ? '' : toHex(hashBytes)
    const capacity = { cores: r.u16(), memoryMiB: r.u32(), matmulMflops: r.u32() }
    const residentMiB = r.u32()
    const model = r.str(MAX_MODEL_BYTES)
    const count = r.u8()
    if (count > MAX_ADDRS) return { ok: false, reason: 'malformed' }
    const addresses: string[] = []
    for (let i = 0; i < count; i++) addresses.push(r.str(MAX_ADDR_BYTES))
    if (!r.atEnd()) return { ok: false, reason: 'malformed' }
    const nodeId = peerIdFromPublicKey(publicKeyFromRaw(publicKey)).toString()
    const heartbeat: Heartbeat = {
      poolId, publicKey, incarnation, seq, sentAtMs, status, epoch, ringHash, capacity, residentMiB, model, addresses
    }
    return { ok: true, value: { heartbeat, nodeId, signed: r.consumed(), signature: bytes.subarray(bytes.length - SIG_BYTES) } }
  } catch (err) {
    if (err instanceof TruncatedError) return { ok: false, reason: 'truncated' }
    return { ok: false, reason: 'malformed' } // bad UTF-8, a public key that is not a curve point…
  }
}

/** Check the device signature over exactly the received bytes. */
export async function verifyHeartbeatSignature (d: DecodedHeartbeat): Promise<boolean> {
  try {
    return await publicKeyFromRaw(d.heartbeat.publicKey).verify(concatBytes(DOMAIN, d.signed), d.signature)
  } catch {
    return false
  }
}

class TruncatedError extends Error {}

class Reader {
  private off = 0
  private readonly view: DataView
  constructor (private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  private need (n: number): number {
    if (this.off + n > this.buf.length) throw new TruncatedError()
    const at = this.off
    this.off += n
    return at
  }

  u8 (): number { return this.view.getUint8(this.need(1)) }
  u16 (): number { return this.view.getUint16(this.need(2)) }
  u32 (): number { return this.view.getUint32(this.need(4)) }
  u64 (): number {
    const v = this.view.getBigUint64(this.need(8))
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('u64 beyond 2^53')
    return Number(v)
  }

  bytes (n: number): Uint8Array { const at = this.need(n); return this.buf.slice(at, at + n) }
  str (max: number): string {
    const n = this.u8()
    if (n > max) throw new RangeError('string too long')
    return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes(n))
  }

  atEnd (): boolean { return this.off === this.buf.length }
  consumed (): Uint8Array { return this.buf.subarray(0, this.off) }
}

class Writer {
  private readonly parts: Uint8Array[] = []
  private num (n: number, bytes: number, put: (v: DataView) => void, max: number): void {
    if (!Number.isSafeInteger(n) || n < 0 || n > max) throw new HeartbeatEncodeError(`value ${n} does not fit ${bytes} bytes`)
    const b = new Uint8Array(bytes)
    put(new DataView(b.buffer))
    this.parts.push(b)
  }

  u8 (n: number): void { this.num(n, 1, (v) => v.setUint8(0, n), 0xff) }
  u16 (n: number): void { this.num(n, 2, (v) => v.setUint16(0, n), 0xffff) }
  u32 (n: number): void { this.num(n, 4, (v) => v.setUint32(0, n), 0xffffffff) }
  u64 (n: number): void { this.num(n, 8, (v) => v.setBigUint64(0, BigInt(n)), Number.MAX_SAFE_INTEGER) }
  bytes (b: Uint8Array): void { this.parts.push(b) }
  finish (): Uint8Array { return concatBytes(...this.parts) }
}

function utf8 (s: string, max: number, what: string): Uint8Array {
  const b = new TextEncoder().encode(s)
  if (b.length > max) throw new HeartbeatEncodeError(`${what} longer than ${max} bytes`)
  return b
}

function hex32 (s: string, what: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(s)) throw new HeartbeatEncodeError(`${what} must be 64 lowercase hex digits`)
  return Uint8Array.from(Buffer.from(s, 'hex'))
}
