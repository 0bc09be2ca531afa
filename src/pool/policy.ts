/**
 * How a pool admits devices: its signing policy and its join token.
 *
 * Exports: POLICIES, PoolPolicy, parsePolicy, JOIN_TOKEN_BYTES, newJoinToken, parseJoinToken,
 * DEFAULT_CERT_LIFETIME_MS, CLOCK_SKEW_MS, REQUEST_MAX_AGE_MS.
 */
import crypto from 'node:crypto'
import { fromBase64Url } from './encoding.js'
import { InvalidInputError } from './errors.js'

/**
 * token: a request must prove knowledge of the join token (default);
 * manual: requests wait for `mesh pool-approve`; open: anyone is signed (demos only).
 */
export const POLICIES = ['token', 'manual', 'open'] as const
export type PoolPolicy = typeof POLICIES[number]

export function parsePolicy (text: string): PoolPolicy {
  const p = POLICIES.find(x => x === text)
  if (p === undefined) throw new InvalidInputError(`policy must be one of ${POLICIES.join(', ')} (got ${JSON.stringify(text.slice(0, 40))})`)
  return p
}

/** 256 random bits, shown as 43 base64url characters */
export const JOIN_TOKEN_BYTES = 32

/**
 * A fresh token that never starts with '-': one in 64 would, and a command line then reads it as a
 * cluster of short flags (`--token -Qf…`). Redrawing costs under 0.03 bits of the 256.
 */
export function newJoinToken (): string {
  for (;;) {
    const token = crypto.randomBytes(JOIN_TOKEN_BYTES).toString('base64url')
    if (!token.startsWith('-')) return token
  }
}

/** The token's key bytes; InvalidInputError if it is not what `pool-create` printed. */
export function parseJoinToken (text: string): Uint8Array {
  const b = fromBase64Url(text.trim())
  if (b === undefined || b.length !== JOIN_TOKEN_BYTES) {
    throw new InvalidInputError(`join token must be the ${Math.ceil(JOIN_TOKEN_BYTES * 4 / 3)} base64url characters printed by \`mesh pool-create\``)
  }
  return b
}

/** Certificates last 30 days; the agent renews them well before. */
export const DEFAULT_CERT_LIFETIME_MS = 30 * 24 * 3600_000
/** notBefore is set this far in the past, so a member whose clock is a little behind accepts its cert */
export const CLOCK_SKEW_MS = 5 * 60_000
/** a request older or newer than this (by the admin's clock) is refused as stale */
export const REQUEST_MAX_AGE_MS = 10 * 60_000
