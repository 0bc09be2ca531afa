/**
 * Why a request was refused, as a closed list with one HTTP status each, and the counters that
 * /health shows. Handlers throw a Refusal; the server's error handler answers and counts it.
 *
 * Exports: RefusalReason, REFUSAL_STATUS, Refusal, RefusalCounters, reasonForStatus.
 */

export const REFUSAL_STATUS = {
  'unauthenticated': 401, // no or malformed auth headers
  'stale-timestamp': 401,
  'bad-certificate': 401, // the certificate header does not decode
  'bad-signature': 401, // forged: the device key did not sign this request
  'not-member': 403, // the certificate is not valid for this pool (other pool, other root, expired, revoked)
  'pool-not-served': 403, // this control plane serves a fixed list of pools
  'not-registered': 403, // register the device before using the pool
  'not-allowed': 403, // e.g. reading another member's job
  'unknown-pool': 404,
  'not-found': 404,
  'replay': 409, // the nonce was used before
  'conflict': 409, // the job is not in a state that allows this
  'malformed': 400,
  'oversized': 413,
  'unsupported-media': 415,
  'queue-full': 429
} as const satisfies Record<string, number>

export type RefusalReason = keyof typeof REFUSAL_STATUS

export class Refusal extends Error {
  readonly status: number
  constructor (readonly reason: RefusalReason, message: string) {
    super(message)
    this.name = 'Refusal'
    this.status = REFUSAL_STATUS[reason]
  }
}

/** The reason for a status fastify produced itself (body too large, bad content type, no route). */
export function reasonForStatus (status: number): RefusalReason {
  switch (status) {
    case 401: return 'unauthenticated'
    case 403: return 'not-allowed'
    case 404: return 'not-found'
    case 409: return 'conflict'
    case 413: return 'oversized'
    case 415: return 'unsupported-media'
    case 429: return 'queue-full'
    default: return 'malformed'
  }
}

export class RefusalCounters {
  private readonly counts = new Map<RefusalReason, number>()
  count (reason: RefusalReason): void { this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1) }
  /** every reason, zeros included, in a stable order */
  snapshot (): Record<RefusalReason, number> {
    const out = {} as Record<RefusalReason, number>
    for (const r of Object.keys(REFUSAL_STATUS) as RefusalReason[]) out[r] = this.counts.get(r) ?? 0
    return out
  }
}
