/**
 * Byte-level helpers shared by the signed encodings (cert.ts, revocation.ts, cert-request.ts):
 * a writer and a strict reader of big-endian fields, and strict hex / base64url text forms.
 *
 * Exports: ByteWriter, ByteReader, toHex, fromHex, toBase64Url, fromBase64Url, equalBytes, concatBytes,
 * WIRE_KIND, MAX_NAME_BYTES, validateName.
 */
import { MalformedError } from './errors.js'

/** First byte of each signed encoding: a signature made for one kind can never pass as another. */
export const WIRE_KIND = { memberCert: 1, revocationList: 2, certRequest: 3 } as const

/** Device and pool names: at most this many UTF-8 bytes (keeps a certificate under ~230 bytes). */
export const MAX_NAME_BYTES = 64

export class ByteWriter {
  private readonly parts: Uint8Array[] = []
  u8 (v: number): this { this.parts.push(Uint8Array.of(v)); return this }
  u16 (v: number): this { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, v); this.parts.push(b); return this }
  /** a non-negative safe integer (milliseconds, sequence numbers) as 8 bytes */
  u64 (v: number): this {
    const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(v)); this.parts.push(b); return this
  }

  bytes (v: Uint8Array): this { this.parts.push(v); return this }
  /** u8 length, then UTF-8 */
  shortString (v: string): this { const b = new TextEncoder().encode(v); return this.u8(b.length).bytes(b) }
  finish (): Uint8Array { return concatBytes(...this.parts) }
}

/** Reads fields in order; every short read or bad value throws MalformedError naming `what`. */
export class ByteReader {
  private pos = 0
  constructor (private readonly buf: Uint8Array, private readonly what: string) {}

  /**
   * Start decoding a signed encoding: size bound before anything else, then kind and version.
   * Reads from a private copy, since callers may reuse their buffer.
   */
  static open (input: Uint8Array, what: string, maxBytes: number, kind: number, version: number): ByteReader {
    if (input.length > maxBytes) throw new MalformedError(what, `${input.length} bytes, more than ${maxBytes}`)
    const r = new ByteReader(Uint8Array.from(input), what)
    if (r.u8('kind') !== kind) r.fail(`not a ${what}`)
    if (r.u8('version') !== version) r.fail('unsupported version')
    return r
  }
  get offset (): number { return this.pos }
  fail (problem: string): never { throw new MalformedError(this.what, problem) }
  bytes (n: number, field: string): Uint8Array {
    if (this.pos + n > this.buf.length) this.fail(`truncated in ${field}`)
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  u8 (field: string): number { return this.bytes(1, field)[0] as number }
  u16 (field: string): number { const b = this.bytes(2, field); return (b[0] as number) * 256 + (b[1] as number) }
  u64 (field: string): number {
    const b = this.bytes(8, field)
    const v = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${field} out of range`)
    return Number(v)
  }

  shortString (field: string): string {
    const b = this.bytes(this.u8(`${field} length`), field)
    let s: string
    try { s = new TextDecoder('utf-8', { fatal: true }).decode(b) } catch { this.fail(`${field} is not UTF-8`) }
    const problem = nameProblem(s)
    if (problem !== undefined) this.fail(`${field} ${problem}`)
    return s
  }

  /** The rest is the signature (exactly `n` bytes) over everything before it. */
  signatureTail (n: number): { bytes: Uint8Array, signedBytes: Uint8Array, signature: Uint8Array } {
    const signedBytes = this.buf.subarray(0, this.pos)
    return { bytes: this.buf, signedBytes, signature: this.end(n, 'signature') }
  }

  /** the rest must be exactly `n` bytes */
  end (n: number, field: string): Uint8Array {
    if (this.buf.length - this.pos !== n) this.fail(`${field} must be the last ${n} bytes (got ${this.buf.length - this.pos})`)
    return this.bytes(n, field)
  }
}

function nameProblem (s: string): string | undefined {
  if (s.length === 0) return 'is empty'
  if (new TextEncoder().encode(s).length > MAX_NAME_BYTES) return `is longer than ${MAX_NAME_BYTES} bytes`
  // control characters would let a name forge lines in `pool-status` output
  if (/\p{Cc}/u.test(s)) return 'contains control characters'
  if (s.trim() !== s) return 'has leading or trailing spaces'
  return undefined
}

/** Check a user-supplied device/pool name; returns the problem or undefined. */
export function validateName (s: string): string | undefined { return nameProblem(s) }

export function toHex (b: Uint8Array): string { return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') }

/** Strict hex of exactly `bytes` bytes (either case); undefined if malformed. */
export function fromHex (s: string, bytes: number): Uint8Array | undefined {
  if (s.length !== bytes * 2 || !/^[0-9a-fA-F]*$/.test(s)) return undefined
  return new Uint8Array(Buffer.from(s, 'hex'))
}

export function toBase64Url (b: Uint8Array): string { return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url') }

/** Strict unpadded base64url (re-encodes to the same text); undefined if malformed. */
export function fromBase64Url (s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return undefined
  const b = Buffer.from(s, 'base64url')
  if (b.toString('base64url') !== s) return undefined
  return new Uint8Array(b)
}

export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export function concatBytes (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}
