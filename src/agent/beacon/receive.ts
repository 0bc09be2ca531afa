import { decodeBeacon, type Beacon, type DecodeFailure } from './wire.js'
import type { ReplayGuard } from './replay.js'

/**
 * The receive pipeline: bytes in, an accepted beacon or a typed drop reason out. Checks run
 * cheapest first (STYLE.md): size and version, decode, own packet, pool filter, clock window,
 * replay, "not for us", then the ed25519 signature and the certificate. Nothing here throws on
 * untrusted input and nothing does I/O; the caller counts the reason.
 */
export type DropReason =
  | DecodeFailure
  | 'own'
  | 'other-pool'
  | 'stale'
  | 'future'
  | 'duplicate'
  | 'replay'
  | 'not-admin'
  | 'not-for-us'
  | 'bad-signature'
  | 'bad-certificate'
  | 'key-mismatch'
  | 'bad-request'
  | 'rate-limited'

export const DROP_REASONS: readonly DropReason[] = [
  'oversized', 'truncated', 'bad-magic', 'bad-version', 'unknown-type', 'malformed', 'own', 'other-pool',
  'stale', 'future', 'duplicate', 'replay', 'not-admin', 'not-for-us', 'bad-signature', 'bad-certificate',
  'key-mismatch', 'bad-request', 'rate-limited'
]

/**
 * A certificate or request that passed the pool's checks, with the device key it is bound to; or
 * why not. `wrongKey` says it is well-formed but bound to another device than expected, which a
 * view checks before any signature (cheap first).
 */
export type Checked<T> = { ok: true, value: T, publicKey: Uint8Array } | { ok: false, reason: string, wrongKey?: boolean }

/** What the pipeline needs to know about one pool this device belongs to (or is joining). */
export interface PoolTrustView<Cert, Request> {
  /** this device holds the pool root key, so it answers certificate requests */
  isAdmin: boolean
  /** decode a member certificate for device `key` and verify it against the pool root, revocations and `now` */
  checkCert: (bytes: Uint8Array, key: Uint8Array, now: number) => Checked<Cert>
  /** decode a certificate request by device `key` and verify its signature (the policy decision comes later) */
  checkRequest: (bytes: Uint8Array, key: Uint8Array) => Checked<Request>
}

export interface ReceiveContext<Cert, Request> {
  self: Uint8Array // our device public key
  pools: ReadonlyMap<string, PoolTrustView<Cert, Request>> // by hex pool id
  now: number
  maxSkewMs: number
  replay: ReplayGuard
  verify: (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean
}

export type Accepted<Cert, Request> =
  | { type: 'announce', beacon: Beacon & { type: 'announce' }, poolId: string, sender: string, cert: Cert }
  | { type: 'cert-request', beacon: Beacon & { type: 'cert-request' }, poolId: string, sender: string, request: Request }
  | { type: 'cert-response', beacon: Beacon & { type: 'cert-response' }, poolId: string, sender: string, cert: Cert }

export type ReceiveResult<Cert, Request> =
  | { ok: true, accepted: Accepted<Cert, Request> }
  | { ok: false, reason: DropReason, detail?: string }

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(b)
const drop = (reason: DropReason, detail?: string): { ok: false, reason: DropReason, detail?: string } =>
  detail === undefined ? { ok: false, reason } : { ok: false, reason, detail }

export function receiveBeacon<Cert, Request> (data: Uint8Array, ctx: ReceiveContext<Cert, Request>): ReceiveResult<Cert, Request> {
  const decoded = decodeBeacon(data)
  if (typeof decoded === 'string') return drop(decoded)
  const { beacon, signed, signature } = decoded
  if (sameBytes(beacon.sender, ctx.self)) return drop('own')
  const poolId = hex(beacon.poolId)
  const pool = ctx.pools.get(poolId)
  if (pool === undefined) return drop('other-pool')
  if (beacon.timestampMs < ctx.now - ctx.maxSkewMs) return drop('stale')
  if (beacon.timestampMs > ctx.now + ctx.maxSkewMs) return drop('future')
  const sender = hex(beacon.sender)
  const seen = ctx.replay.check(sender, beacon.seq)
  if (seen !== 'fresh') return drop(seen)
  if (beacon.type === 'cert-request' && !pool.isAdmin) return drop('not-admin')
  if (beacon.type === 'cert-response' && !sameBytes(beacon.target, ctx.self)) return drop('not-for-us')
  if (!ctx.verify(signature, signed, beacon.sender)) return drop('bad-signature')

  let accepted: Accepted<Cert, Request>
  switch (beacon.type) {
    case 'announce': {
      const c = pool.checkCert(beacon.cert, beacon.sender, ctx.now)
      if (!c.ok) return c.wrongKey === true ? drop('key-mismatch', 'the certificate belongs to another device') : drop('bad-certificate', c.reason)
      accepted = { type: 'announce', beacon, poolId, sender, cert: c.value }
      break
    }
    case 'cert-request': {
      const r = pool.checkRequest(beacon.request, beacon.sender)
      if (!r.ok) return r.wrongKey === true ? drop('key-mismatch', 'the request was made by another device') : drop('bad-request', r.reason)
      accepted = { type: 'cert-request', beacon, poolId, sender, request: r.value }
      break
    }
    case 'cert-response': {
      // the beacon is signed by the admin's device key; what counts is that the pool root signed the certificate
      const c = pool.checkCert(beacon.cert, ctx.self, ctx.now)
      if (!c.ok) return c.wrongKey === true ? drop('key-mismatch', 'the certificate is for another device') : drop('bad-certificate', c.reason)
      accepted = { type: 'cert-response', beacon, poolId, sender, cert: c.value }
      break
    }
  }
  ctx.replay.commit(sender, beacon.seq)
  return { ok: true, accepted }
}

/** Drop counters by reason, all present (zero) so status output has a stable shape. */
export type DropCounts = Record<DropReason, number>
export function emptyDropCounts (): DropCounts {
  return Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as DropCounts
}
