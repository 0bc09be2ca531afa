/**
 * Authenticate one device request: the device signature (signing.ts), then the certificate against
 * the pool's root public key and newest revocation list, then the nonce (a replay is refused even after a restart, as nonces
 * live in the store). Every failure is a Refusal with its reason; nothing here needs a root private key.
 *
 * Exports: Member, AuthMode, VerifiedCerts, AuthContext, authenticate, parseJson, rawBody.
 */
import type { FastifyRequest } from 'fastify'
import type { z } from 'zod'
import { decodeRevocationList, derivePoolId, fromHex, type MemberCert, type PoolTrust, VerifyError, verifyMemberCert } from '../pool/index.js'
import { Refusal } from './refusals.js'
import { TIMESTAMP_WINDOW_MS, verifySignedRequest } from './signing.js'
import type { PoolStore } from './store/pools.js'

/** A device proven to hold a valid certificate of the pool named in the path. */
export interface Member {
  readonly poolId: string
  readonly nodeId: string
  readonly cert: MemberCert
}

/**
 * `register`: the body names the pool's root public key, so a pool the control plane has not seen
 * yet can be registered (its Pool ID is the hash of that key, so no one can register a wrong key).
 * `member`: the pool and the device must be registered already.
 */
export type AuthMode = 'register' | 'member'

/** Bound of the verified-certificate cache; far above the devices of the pools one server sees. */
const VERIFIED_CACHE = 4096

/**
 * Certificates that passed verifyMemberCert, by pool, revocation sequence and exact bytes: a device
 * shows the same certificate on every request, and its root signature costs more than the rest of
 * the request. A hit outside the certificate's validity is verified again, so it fails as it should.
 */
export class VerifiedCerts {
  private readonly certs = new Map<string, MemberCert>()

  verify (cert: MemberCert, trust: PoolTrust, now: number): void {
    const key = `${trust.poolId}/${trust.revocation?.sequence ?? 0}/${Buffer.from(cert.bytes).toString('base64')}`
    const hit = this.certs.get(key)
    if (hit !== undefined && now >= hit.notBefore && now < hit.notAfter) return
    verifyMemberCert(cert, trust, now)
    if (this.certs.size >= VERIFIED_CACHE) this.certs.delete(this.certs.keys().next().value as string)
    this.certs.set(key, cert)
  }
}

export interface AuthContext {
  readonly verified: VerifiedCerts
  readonly pools: PoolStore
  /** when set, only these pools (Pool ID → root public key) are served */
  readonly servedPools: ReadonlyMap<string, Uint8Array> | undefined
  readonly now: () => number
}

const POOL_ID_RE = /^[0-9a-f]{64}$/

export function rawBody (request: FastifyRequest): Uint8Array {
  return Buffer.isBuffer(request.body) ? request.body : new Uint8Array(0)
}

/** The JSON body checked against `schema`; an empty body counts as `{}`. */
export function parseJson<S extends z.ZodType> (request: FastifyRequest, schema: S): z.infer<S> {
  const raw = rawBody(request)
  let value: unknown
  try {
    value = raw.length === 0 ? {} : JSON.parse(Buffer.from(raw).toString('utf8'))
  } catch {
    throw new Refusal('malformed', 'request body is not JSON')
  }
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const where = issue !== undefined && issue.path.length > 0 ? issue.path.join('.') : 'body'
    throw new Refusal('malformed', `${where}: ${issue?.message ?? 'invalid'}`)
  }
  return parsed.data
}

function rootKeyFromBody (request: FastifyRequest): Uint8Array {
  const raw = rawBody(request)
  let text: unknown
  try { text = (JSON.parse(Buffer.from(raw).toString('utf8')) as { rootPublicKey?: unknown }).rootPublicKey } catch { /* below */ }
  const key = typeof text === 'string' ? fromHex(text, 32) : undefined
  if (key === undefined) throw new Refusal('malformed', 'rootPublicKey: 64 hex digits required (the Pool Root Public Key from `mesh pool-create`)')
  return key
}

function trustFor (ctx: AuthContext, request: FastifyRequest, poolId: string, mode: AuthMode): PoolTrust {
  const served = ctx.servedPools?.get(poolId)
  if (ctx.servedPools !== undefined && served === undefined) {
    throw new Refusal('pool-not-served', `this control plane does not serve pool ${poolId.slice(0, 16)}…`)
  }
  const known = ctx.pools.pool(poolId)
  // stored only after verification, so decoding cannot fail on our own data
  const revocation = known?.revocation === undefined ? undefined : decodeRevocationList(known.revocation)
  if (mode === 'member') {
    if (known === undefined) throw new Refusal('unknown-pool', `pool ${poolId.slice(0, 16)}… is not registered here; register a device of it first`)
    return { poolId, rootPublicKey: known.rootPublicKey, revocation }
  }
  const rootPublicKey = rootKeyFromBody(request)
  if (derivePoolId(rootPublicKey) !== poolId) {
    throw new Refusal('malformed', `rootPublicKey does not belong to pool ${poolId.slice(0, 16)}…; copy both from the admin's \`mesh pool-create\` output`)
  }
  // a revoked device must not come back by registering again
  return { poolId, rootPublicKey, revocation }
}

export function authenticate (ctx: AuthContext, request: FastifyRequest, poolId: string, mode: AuthMode): Member {
  const now = ctx.now()
  const v = verifySignedRequest(request.method, request.url, rawBody(request), request.headers, now)
  if (!v.ok) throw new Refusal(v.reason, v.message)
  if (!POOL_ID_RE.test(poolId)) throw new Refusal('malformed', 'the path must name a Pool ID of 64 lower-case hex digits')
  const trust = trustFor(ctx, request, poolId, mode)
  try {
    ctx.verified.verify(v.cert, trust, now)
  } catch (err) {
    if (err instanceof VerifyError) throw new Refusal('not-member', err.message)
    throw err
  }
  ctx.pools.transaction(() => {
    // the timestamp check refuses the request after this anyway, so the nonce can be forgotten then
    if (!ctx.pools.rememberNonce(v.cert.devicePublicKey, v.nonce, Math.max(now, v.timestamp) + TIMESTAMP_WINDOW_MS)) {
      throw new Refusal('replay', 'this request was already received (nonce reused); sign every request afresh')
    }
    if (mode === 'register') {
      ctx.pools.addPool(poolId, trust.rootPublicKey, now)
      ctx.pools.registerDevice(v.cert, now)
    } else if (!ctx.pools.touchDevice(v.cert, now)) {
      throw new Refusal('not-registered', `device ${v.cert.nodeId} is not registered in this pool; register it first`)
    }
  })
  return { poolId, nodeId: v.cert.nodeId, cert: v.cert }
}
