/**
 * /mesh/model/1.0.0: a member fetches a model checkpoint from a pool member that serves it.
 * The asker sends a request; the server answers with a fixed-size header, then (if it serves that
 * checkpoint) the file's bytes, and closes. Everything here is untrusted input: exact sizes, a
 * version byte, a size bound; the bytes themselves are checked against the sha256 asked for.
 *
 *   request: u8 version (1) ‖ 32 bytes sha256 of the checkpoint
 *   answer:  u8 status (0 file follows, 1 not served here, 2 too large for this relayed connection)
 *            ‖ u64 BE size (the file's for 0 and 2, else 0)
 */
export const MODEL_PROTOCOL = '/mesh/model/1.0.0'
export const MODEL_WIRE_VERSION = 1
export const REQUEST_BYTES = 33
export const ANSWER_BYTES = 9
/** 1 TiB: far above any checkpoint this engine can hold in memory; a larger claim is a lie */
export const MAX_MODEL_FILE_BYTES = 2 ** 40

export type ModelAnswer =
  | { readonly kind: 'file', readonly size: number }
  | { readonly kind: 'not-served' }
  | { readonly kind: 'too-large', readonly size: number }

const STATUS = { file: 0, 'not-served': 1, 'too-large': 2 } as const

/**
 * Whether a checkpoint of `size` bytes may cross a connection with these limits (libp2p's
 * Connection.limits): a direct connection, always; a relayed one only within half the bytes the
 * relay allows it, the rest left to the pool's gossip, jobs and tensor frames on the same
 * connection (mesh-relay's default: 1 GiB, so up to 512 MiB). Without a byte cap, only time bounds it.
 */
export function fitsConnection (size: number, limits: { readonly bytes?: bigint } | undefined): boolean {
  if (limits?.bytes === undefined) return true
  return BigInt(size) * 2n <= limits.bytes
}

const HEX64 = /^[0-9a-f]{64}$/

export function encodeModelRequest (sha256: string): Uint8Array {
  if (!HEX64.test(sha256)) throw new RangeError(`not a sha256: ${sha256}`)
  const out = new Uint8Array(REQUEST_BYTES)
  out[0] = MODEL_WIRE_VERSION
  out.set(Buffer.from(sha256, 'hex'), 1)
  return out
}

/** The sha256 asked for, or null for anything else. */
export function decodeModelRequest (bytes: Uint8Array): string | null {
  if (bytes.byteLength !== REQUEST_BYTES || bytes[0] !== MODEL_WIRE_VERSION) return null
  return Buffer.from(bytes.subarray(1)).toString('hex')
}

export function encodeModelAnswer (a: ModelAnswer): Uint8Array {
  const out = new Uint8Array(ANSWER_BYTES)
  out[0] = STATUS[a.kind]
  new DataView(out.buffer).setBigUint64(1, BigInt(a.kind === 'not-served' ? 0 : a.size))
  return out
}

export function decodeModelAnswer (bytes: Uint8Array): ModelAnswer | null {
  if (bytes.byteLength !== ANSWER_BYTES) return null
  const size = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(1)
  if (bytes[0] === STATUS['not-served']) return size === 0n ? { kind: 'not-served' } : null
  if ((bytes[0] !== STATUS.file && bytes[0] !== STATUS['too-large']) || size === 0n || size > BigInt(MAX_MODEL_FILE_BYTES)) return null
  return { kind: bytes[0] === STATUS.file ? 'file' : 'too-large', size: Number(size) }
}
