/**
 * Certificate requests over libp2p, `/mesh/cert-request/1.0.0`, for a device joining across a NAT
 * that no beacon of the admin reaches (`mesh pool-join … --bootstrap ADDR`). The requester sends
 * the same signed request bytes a cert-request beacon carries (src/pool cert-request.ts) as one
 * length-prefixed frame; the admin decides it under the pool's policy exactly as for a beacon
 * (CertJoin.decide) and answers one frame: a version byte, a kind byte, then the certificate or a
 * short reason. The request must name the peer that sent it (Noise proved its id). Both sides bound
 * sizes and time; what does not fit is dropped and counted.
 *
 * Exports: CERT_REQUEST_PROTOCOL, JoinAnswer, encodeJoinAnswer, decodeJoinAnswer, CertRequestDropReason,
 * CertRequestServer, requestCertificate, MAX_JOIN_ANSWER_BYTES.
 */
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { decodeCertRequest, MAX_CERT_BYTES, MAX_CERT_REQUEST_BYTES, type CertRequest } from '../../pool/index.js'
import type { JoinDecision } from '../join.js'

export const CERT_REQUEST_PROTOCOL = '/mesh/cert-request/1.0.0'

const VERSION = 1
const MAX_REASON_BYTES = 120
export const MAX_JOIN_ANSWER_BYTES = 2 + Math.max(MAX_CERT_BYTES, MAX_REASON_BYTES)
/** a request and its answer are two small frames; a peer slower than this is gone or stalling */
const EXCHANGE_TIMEOUT_MS = 10_000

/** The answer as it travels: a decision without the admin's internals. */
export type JoinAnswer =
  | { kind: 'certificate', cert: Uint8Array }
  | { kind: 'pending' }
  | { kind: 'refused', reason: string }
  | { kind: 'rate-limited' }
  | { kind: 'undecided', reason: string }

// wire numbers: only append
const KINDS = ['certificate', 'pending', 'refused', 'rate-limited', 'undecided'] as const

export function encodeJoinAnswer (a: JoinAnswer): Uint8Array {
  const body = a.kind === 'certificate'
    ? a.cert
    : a.kind === 'refused' || a.kind === 'undecided' ? Buffer.from(a.reason, 'utf8').subarray(0, MAX_REASON_BYTES) : new Uint8Array()
  const out = new Uint8Array(2 + body.length)
  out[0] = VERSION
  out[1] = KINDS.indexOf(a.kind) + 1
  out.set(body, 2)
  return out
}

/** Strict: undefined for anything that is not a well-formed answer of this version. */
export function decodeJoinAnswer (bytes: Uint8Array): JoinAnswer | undefined {
  if (bytes.length < 2 || bytes.length > MAX_JOIN_ANSWER_BYTES || bytes[0] !== VERSION) return undefined
  const kind = KINDS[(bytes[1] ?? 0) - 1]
  const body = bytes.subarray(2)
  switch (kind) {
    case 'certificate': return body.length > 0 ? { kind, cert: Uint8Array.from(body) } : undefined
    case 'pending': case 'rate-limited': return body.length === 0 ? { kind } : undefined
    case 'refused': case 'undecided': {
      if (body.length > MAX_REASON_BYTES) return undefined
      const reason = Buffer.from(body).toString('utf8')
      return /^[\x20-\x7e]*$/.test(reason) ? { kind, reason } : undefined
    }
    default: return undefined
  }
}

export type CertRequestDropReason = 'oversized' | 'malformed' | 'wrong-node' | 'timeout' | 'bad-answer'

function answerOf (d: JoinDecision): JoinAnswer {
  return d.kind === 'certificate' ? { kind: 'certificate', cert: d.cert.bytes } : d
}

/** The admin's side: one request, one answer per stream. */
export class CertRequestServer {
  readonly drops = new Map<CertRequestDropReason, number>()
  answered = 0

  constructor (private readonly decide: (poolId: string, req: CertRequest) => JoinDecision) {}

  private count (r: CertRequestDropReason): void { this.drops.set(r, (this.drops.get(r) ?? 0) + 1) }

  async handle (stream: Stream, remotePeer: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_CERT_REQUEST_BYTES })
    let req: CertRequest
    try {
      const frame = await lp.read({ signal: AbortSignal.timeout(EXCHANGE_TIMEOUT_MS) })
      req = decodeCertRequest(frame.subarray())
    } catch (err) {
      const name = err instanceof Error ? err.name : ''
      this.count(name.startsWith('InvalidDataLength') ? 'oversized' : name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'malformed')
      stream.abort(new Error('bad certificate request'))
      return
    }
    // the request is signed by the device key, but it must also come from that device
    if (req.nodeId !== remotePeer) { this.count('wrong-node'); stream.abort(new Error('request for another node')); return }
    const answer = answerOf(this.decide(req.poolId, req))
    await lp.write(encodeJoinAnswer(answer), { signal: AbortSignal.timeout(EXCHANGE_TIMEOUT_MS) })
    this.answered++
    await stream.close()
  }
}

/** The joining device's side: send the request on a fresh stream, read the answer (undefined if it did not decode). */
export async function requestCertificate (stream: Stream, requestBytes: Uint8Array): Promise<JoinAnswer | undefined> {
  const signal = AbortSignal.timeout(EXCHANGE_TIMEOUT_MS)
  const lp = lpStream(stream, { maxDataLength: MAX_JOIN_ANSWER_BYTES })
  await lp.write(requestBytes, { signal })
  const frame = await lp.read({ signal })
  await stream.close().catch(() => {})
  return decodeJoinAnswer(frame.subarray())
}
