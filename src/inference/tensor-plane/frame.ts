import { createCipheriv, createDecipheriv } from 'node:crypto'

/**
 * One tensor-plane frame on the wire:
 *   header (26 bytes, sent in the clear, authenticated as AES-GCM additional data)
 *     u8 version | u8 kind | u16 layer | u32 job | u32 epoch | u32 position | u48 seq | u32 payload bytes
 *   payload (AES-256-GCM ciphertext of little-endian float32s) | 16-byte tag
 * The sequence number is the per-direction counter and also the nonce, so a sender never reuses one
 * and a receiver can tell a replay (seq already seen) from a gap (seq skipped).
 */
export const FRAME_VERSION = 1
export const HEADER_BYTES = 26
export const TAG_BYTES = 16
/** 2^48 frames per link before the nonce would wrap. */
export const MAX_SEQ = 2 ** 48 - 1

// append only: the index is the wire value. 'token': the job leader's input rows for a step;
// 'logits': a member's slice of a step's logits (its classifier rows), to the leader
export const FRAME_KINDS = ['hello', 'attention', 'ffn', 'token', 'logits'] as const
export type FrameKind = typeof FRAME_KINDS[number]

export interface FrameHeader {
  readonly kind: FrameKind
  readonly layer: number // u16
  readonly job: number // u32
  readonly epoch: number // u32
  readonly position: number // u32
  readonly seq: number // u48
  readonly payloadBytes: number // u32, a multiple of 4
}

export function encodeHeader (h: FrameHeader): Buffer {
  const b = Buffer.alloc(HEADER_BYTES)
  b.writeUInt8(FRAME_VERSION, 0)
  b.writeUInt8(FRAME_KINDS.indexOf(h.kind), 1)
  b.writeUInt16BE(h.layer, 2)
  b.writeUInt32BE(h.job, 4)
  b.writeUInt32BE(h.epoch, 8)
  b.writeUInt32BE(h.position, 12)
  b.writeUIntBE(h.seq, 16, 6)
  b.writeUInt32BE(h.payloadBytes, 22)
  return b
}

/** Why a header cannot be framed; the stream cannot be resynchronised after any of these. */
export type HeaderFault = 'bad-version' | 'bad-kind' | 'oversize' | 'misaligned'

/** Parse a header strictly; the payload bound is checked before a single payload byte is buffered. */
export function decodeHeader (b: Uint8Array, maxPayloadBytes: number): FrameHeader | HeaderFault {
  const v = Buffer.from(b.buffer, b.byteOffset, HEADER_BYTES)
  if (v.readUInt8(0) !== FRAME_VERSION) return 'bad-version'
  const kind = FRAME_KINDS[v.readUInt8(1)]
  if (kind === undefined) return 'bad-kind'
  const payloadBytes = v.readUInt32BE(22)
  if (payloadBytes > maxPayloadBytes) return 'oversize'
  if (payloadBytes % 4 !== 0) return 'misaligned'
  return { kind, layer: v.readUInt16BE(2), job: v.readUInt32BE(4), epoch: v.readUInt32BE(8), position: v.readUInt32BE(12), seq: v.readUIntBE(16, 6), payloadBytes }
}

function nonce (seq: number): Buffer {
  const n = Buffer.alloc(12)
  n.writeUIntBE(seq, 6, 6)
  return n
}

/** The whole frame for a payload: header, ciphertext, tag. */
export function sealFrame (key: Buffer, h: Omit<FrameHeader, 'payloadBytes'>, payload: Float32Array): Buffer {
  const header = encodeHeader({ ...h, payloadBytes: payload.byteLength })
  const cipher = createCipheriv('aes-256-gcm', key, nonce(h.seq))
  cipher.setAAD(header)
  const body = cipher.update(littleEndian(payload))
  cipher.final()
  return Buffer.concat([header, body, cipher.getAuthTag()])
}

/** The payload of a frame whose header was decoded, or null if the tag does not verify. */
export function openFrame (key: Buffer, header: Uint8Array, h: FrameHeader, body: Uint8Array, tag: Uint8Array): Float32Array | null {
  const decipher = createDecipheriv('aes-256-gcm', key, nonce(h.seq))
  decipher.setAAD(header)
  decipher.setAuthTag(tag)
  const plain = decipher.update(body)
  try {
    decipher.final()
  } catch {
    return null
  }
  return fromLittleEndian(plain)
}

// Float32Array uses the platform's byte order, little-endian on every machine Node runs on here.
// The decoded vector is a copy, so it never aliases a pooled network buffer.
function littleEndian (v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}
function fromLittleEndian (b: Buffer): Float32Array {
  const out = new Float32Array(b.length / 4)
  new Uint8Array(out.buffer).set(b)
  return out
}
