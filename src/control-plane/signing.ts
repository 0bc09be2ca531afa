/**
 * Signed HTTP requests, shared by the server (verify) and the client (sign).
 *
 * A device signs, with its device key, one canonical text binding everything that matters:
 *   "mesh-control-plane-request-v1\n" METHOD "\n" path?query "\n" sha256hex(body) "\n" timestamp "\n" nonce
 * and sends four headers: its pool certificate (which carries the device public key), the timestamp
 * (ms since the epoch), a fresh 128-bit nonce, and the signature. The server checks the timestamp window
 * and the signature here; the nonce's freshness and the certificate's pool are checked against its store.
 *
 * Exports: AUTH_HEADERS, TIMESTAMP_WINDOW_MS, SignedRequestInput, canonicalRequest, signRequest,
 * newNonce, AuthFailure, VerifiedRequest, verifySignedRequest.
 */
import crypto from 'node:crypto'
import { decodeMemberCert, fromBase64Url, MAX_CERT_BYTES, type MemberCert, sign, SIGNATURE_BYTES, toBase64Url, verifySignature } from '../pool/index.js'

export const AUTH_HEADERS = {
  cert: 'x-mesh-cert',
  timestamp: 'x-mesh-timestamp',
  nonce: 'x-mesh-nonce',
  signature: 'x-mesh-signature'
} as const

/**
 * A request older or newer than this is refused. Wide enough for LAN clocks that NTP keeps within
 * a second or two; narrow enough that the nonces to remember stay few.
 */
export const TIMESTAMP_WINDOW_MS = 60_000

const DOMAIN = 'mesh-control-plane-request-v1'
const NONCE_RE = /^[0-9a-f]{32}$/

export interface SignedRequestInput {
  readonly method: string
  /** path and query exactly as sent, e.g. /v1/pools/ab…/jobs/x?after=3 */
  readonly path: string
  readonly body: Uint8Array
  readonly timestamp: number
  readonly nonce: string
}

export function canonicalRequest (r: SignedRequestInput): Uint8Array {
  const bodyHash = crypto.createHash('sha256').update(r.body).digest('hex')
  return new TextEncoder().encode(`${DOMAIN}\n${r.method.toUpperCase()}\n${r.path}\n${bodyHash}\n${r.timestamp}\n${r.nonce}`)
}

export function newNonce (): string { return crypto.randomBytes(16).toString('hex') }

/** The four auth headers for a request, signed with the device's private seed. */
export function signRequest (r: SignedRequestInput, certBytes: Uint8Array, devicePrivateKey: Uint8Array): Record<string, string> {
  return {
    [AUTH_HEADERS.cert]: toBase64Url(certBytes),
    [AUTH_HEADERS.timestamp]: String(r.timestamp),
    [AUTH_HEADERS.nonce]: r.nonce,
    [AUTH_HEADERS.signature]: toBase64Url(sign(canonicalRequest(r), devicePrivateKey))
  }
}

/** Why a request was not authenticated: the reason is the refusal counter's key. */
export interface AuthFailure {
  readonly ok: false
  readonly reason: 'unauthenticated' | 'stale-timestamp' | 'bad-certificate' | 'bad-signature'
  readonly message: string
}

export interface VerifiedRequest {
  readonly ok: true
  /** decoded, signature by the device proven; its pool and root signature are NOT checked yet */
  readonly cert: MemberCert
  readonly nonce: string
  readonly timestamp: number
}

type Headers = Readonly<Record<string, string | string[] | undefined>>

function header (h: Headers, name: string): string | undefined {
  const v = h[name]
  return typeof v === 'string' ? v : undefined
}

const fail = (reason: AuthFailure['reason'], message: string): AuthFailure => ({ ok: false, reason, message })

/**
 * Check the headers of one request, cheapest first: present and well-formed, timestamp inside the
 * window, certificate decodes, device signature verifies over the canonical text.
 */
export function verifySignedRequest (
  method: string, path: string, body: Uint8Array, headers: Headers, now: number, windowMs = TIMESTAMP_WINDOW_MS
): VerifiedRequest | AuthFailure {
  const certText = header(headers, AUTH_HEADERS.cert)
  const tsText = header(headers, AUTH_HEADERS.timestamp)
  const nonce = header(headers, AUTH_HEADERS.nonce)
  const sigText = header(headers, AUTH_HEADERS.signature)
  if (certText === undefined || tsText === undefined || nonce === undefined || sigText === undefined) {
    return fail('unauthenticated', `sign the request: headers ${Object.values(AUTH_HEADERS).join(', ')} are required`)
  }
  if (!/^[0-9]{1,16}$/.test(tsText)) return fail('unauthenticated', `${AUTH_HEADERS.timestamp} must be milliseconds since the epoch`)
  if (!NONCE_RE.test(nonce)) return fail('unauthenticated', `${AUTH_HEADERS.nonce} must be 32 lower-case hex digits`)
  const signature = fromBase64Url(sigText)
  if (signature?.length !== SIGNATURE_BYTES) return fail('unauthenticated', `${AUTH_HEADERS.signature} must be a base64url ed25519 signature`)
  const timestamp = Number(tsText)
  if (Math.abs(now - timestamp) > windowMs) {
    return fail('stale-timestamp', `request timestamp is ${Math.round((timestamp - now) / 1000)} s away from the server's clock (allowed ±${windowMs / 1000} s); check the device clock`)
  }
  // base64url grows 4/3: refuse long text before decoding it
  const certBytes = certText.length <= Math.ceil(MAX_CERT_BYTES * 4 / 3) ? fromBase64Url(certText) : undefined
  if (certBytes === undefined) return fail('bad-certificate', `${AUTH_HEADERS.cert} is not a base64url certificate`)
  let cert: MemberCert
  try {
    cert = decodeMemberCert(certBytes)
  } catch (err) {
    return fail('bad-certificate', err instanceof Error ? err.message : 'malformed certificate')
  }
  const message = canonicalRequest({ method, path, body, timestamp, nonce })
  if (!verifySignature(signature, message, cert.devicePublicKey)) {
    return fail('bad-signature', 'request signature does not verify with the certificate\'s device key')
  }
  return { ok: true, cert, nonce, timestamp }
}
