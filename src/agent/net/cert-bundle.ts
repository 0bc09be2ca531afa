/**
 * What peers send each other on `/mesh/cert/1.0.0` right after the Noise handshake, and again when
 * they learn something new: every member certificate they know and the newest revocation list of
 * each pool, so a member that was offline catches up from whoever it meets first.
 * Binary, big-endian; the numbers are protocol, so only append.
 *
 *   u8 version (1) | u16 certificate count | (u16 length + bytes) × count
 *                  | u8 revocation-list count | (u32 length + bytes) × count
 *
 * Contents are opaque here: the pool library decodes and verifies each item.
 */
export const CERT_PROTOCOL = '/mesh/cert/1.0.0'
const VERSION = 1
export const MAX_BUNDLE_CERTS = 1024
const MAX_CERT_BYTES = 1024
export const MAX_BUNDLE_REVOCATIONS = 32
const MAX_REVOCATION_BYTES = 128 * 1024
/** Bound for the length-prefixed frame, checked before anything is parsed. */
export const MAX_BUNDLE_BYTES = 3 + MAX_BUNDLE_CERTS * (2 + MAX_CERT_BYTES) + MAX_BUNDLE_REVOCATIONS * (4 + MAX_REVOCATION_BYTES)

export interface CertBundle {
  readonly certificates: readonly Uint8Array[]
  readonly revocations: readonly Uint8Array[]
}

export class CertBundleError extends Error {}

export function encodeCertBundle (b: CertBundle): Uint8Array {
  // a node knows at most the members of its pools; past the bound the newest ones wait for the next round
  const certs = b.certificates.slice(0, MAX_BUNDLE_CERTS).filter((c) => c.length <= MAX_CERT_BYTES)
  const revs = b.revocations.slice(0, MAX_BUNDLE_REVOCATIONS).filter((r) => r.length <= MAX_REVOCATION_BYTES)
  const size = 4 + certs.reduce((n, c) => n + 2 + c.length, 0) + revs.reduce((n, r) => n + 4 + r.length, 0)
  const out = new Uint8Array(size)
  const v = new DataView(out.buffer)
  let off = 0
  v.setUint8(off, VERSION); off += 1
  v.setUint16(off, certs.length); off += 2
  for (const c of certs) { v.setUint16(off, c.length); off += 2; out.set(c, off); off += c.length }
  v.setUint8(off, revs.length); off += 1
  for (const r of revs) { v.setUint32(off, r.length); off += 4; out.set(r, off); off += r.length }
  return out.subarray(0, off)
}

/** Strict decode of untrusted bytes; CertBundleError says what is wrong. */
export function decodeCertBundle (bytes: Uint8Array): CertBundle {
  if (bytes.length > MAX_BUNDLE_BYTES) throw new CertBundleError('oversized')
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let off = 0
  const need = (n: number): number => {
    if (off + n > bytes.length) throw new CertBundleError('truncated')
    const at = off; off += n; return at
  }
  if (v.getUint8(need(1)) !== VERSION) throw new CertBundleError('unsupported version')
  const items = (count: number, lengthBytes: 2 | 4, max: number, what: string): Uint8Array[] => {
    const out: Uint8Array[] = []
    for (let i = 0; i < count; i++) {
      const at = need(lengthBytes)
      const len = lengthBytes === 2 ? v.getUint16(at) : v.getUint32(at)
      if (len > max) throw new CertBundleError(`${what} too long`)
      const start = need(len)
      out.push(bytes.slice(start, start + len))
    }
    return out
  }
  const certCount = v.getUint16(need(2))
  if (certCount > MAX_BUNDLE_CERTS) throw new CertBundleError('too many certificates')
  const certificates = items(certCount, 2, MAX_CERT_BYTES, 'certificate')
  const revCount = v.getUint8(need(1))
  if (revCount > MAX_BUNDLE_REVOCATIONS) throw new CertBundleError('too many revocation lists')
  const revocations = items(revCount, 4, MAX_REVOCATION_BYTES, 'revocation list')
  if (off !== bytes.length) throw new CertBundleError('trailing bytes')
  return { certificates, revocations }
}
