/**
 * Freshness queries, the pure half: the wire of `/mesh/fresh/1.0.0` and the choice of what to dial.
 *
 * When a member loses its connection to another (or the address it has fails), it asks the other
 * members of the pool who heard from that node recently, at which endpoint and over which path.
 * An answer carries the age of each observation (never a wall-clock time: members' clocks differ),
 * so the asker can dial the freshest. Everything here is bytes in, data out: the service
 * (freshness-service.ts) owns the streams.
 *
 * Exports: FRESH_PROTOCOL, PATH_KINDS, PathKind, Observation, Sighting, FreshDrop, encodeQuery,
 * decodeQuery, encodeAnswer, decodeAnswer, dialOrder.
 */
import { z } from 'zod'

export const FRESH_PROTOCOL = '/mesh/fresh/1.0.0'

/** How an observation's connection ran: a LAN or WAN address, a hole-punched (WebRTC/UDP) connection, or through a relay. Append only: wire values. */
export const PATH_KINDS = ['direct-lan', 'direct-wan', 'hole-punched', 'relayed'] as const
export type PathKind = typeof PATH_KINDS[number]

/** a query is a pool id and a node id: 64 hex digits and a peer id (≤ 64 base58 characters) in JSON */
export const MAX_QUERY_BYTES = 256
/** an answer: a few observations of a few addresses each */
export const MAX_ANSWER_BYTES = 4096
export const MAX_OBSERVATIONS = 4
export const MAX_ADDRESSES = 8
const MAX_ADDRESS_CHARS = 256
/** an observation older than a day says nothing about where a node is now */
export const MAX_AGE_MS = 86_400_000

/** Why a query or an answer was dropped (counted where status shows it). */
export type FreshDrop = 'oversized' | 'malformed' | 'not-member' | 'timeout' | 'stream-error'

/** What one member knows of another: how long ago it last heard from it, over which connection, and where it says it listens. */
export interface Observation {
  readonly ageMs: number
  /** null: not connected to it, heard only through the pool's gossip */
  readonly path: PathKind | null
  /** the remote address of the connection it heard over (informative: an inbound connection's port is not dialable) */
  readonly endpoint: string | null
  /** addresses to dial: the ones the node announced in its last heartbeat */
  readonly addresses: readonly string[]
}

/** An observation and the member that made it. */
export interface Sighting extends Observation { readonly from: string }

const peerIdText = z.string().regex(/^[1-9A-HJ-NP-Za-km-z]{32,64}$/)
const querySchema = z.strictObject({ poolId: z.string().regex(/^[0-9a-f]{64}$/), nodeId: peerIdText })
const address = z.string().min(1).max(MAX_ADDRESS_CHARS).startsWith('/')
const observationSchema = z.strictObject({
  ageMs: z.number().int().min(0).max(MAX_AGE_MS),
  path: z.enum(PATH_KINDS).nullable(),
  endpoint: address.nullable(),
  addresses: z.array(address).max(MAX_ADDRESSES)
})
const answerSchema = z.strictObject({ observations: z.array(observationSchema).max(MAX_OBSERVATIONS) })

export interface FreshQuery { readonly poolId: string, readonly nodeId: string }

/** Thrown by the decoders; `reason` is the drop counter it belongs to. */
export class FreshWireError extends Error {
  constructor (readonly reason: 'oversized' | 'malformed', message: string) { super(message) }
}

function decodeJson (bytes: Uint8Array, max: number): unknown {
  // the size is checked before anything is parsed: the frame reader bounds it too, this keeps the decoder honest alone
  if (bytes.byteLength > max) throw new FreshWireError('oversized', `${bytes.byteLength} bytes, at most ${max}`)
  try { return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) } catch {
    throw new FreshWireError('malformed', 'not JSON')
  }
}

function encodeJson (value: unknown, max: number): Uint8Array {
  const bytes = Buffer.from(JSON.stringify(value))
  if (bytes.byteLength > max) throw new FreshWireError('oversized', `${bytes.byteLength} bytes, at most ${max}`)
  return bytes
}

export function encodeQuery (q: FreshQuery): Uint8Array {
  return encodeJson(querySchema.parse(q), MAX_QUERY_BYTES)
}

export function decodeQuery (bytes: Uint8Array): FreshQuery {
  const parsed = querySchema.safeParse(decodeJson(bytes, MAX_QUERY_BYTES))
  if (!parsed.success) throw new FreshWireError('malformed', 'not a freshness query')
  return parsed.data
}

/** An answer of at most MAX_OBSERVATIONS, each cut to MAX_ADDRESSES: what we know never makes an answer too big to send. */
export function encodeAnswer (observations: readonly Observation[]): Uint8Array {
  const trimmed = observations.slice(0, MAX_OBSERVATIONS).map((o) => ({
    ageMs: Math.min(MAX_AGE_MS, Math.max(0, Math.round(o.ageMs))),
    path: o.path,
    endpoint: o.endpoint !== null && o.endpoint.length <= MAX_ADDRESS_CHARS ? o.endpoint : null,
    addresses: o.addresses.filter((a) => a.length <= MAX_ADDRESS_CHARS).slice(0, MAX_ADDRESSES)
  }))
  return encodeJson(answerSchema.parse({ observations: trimmed }), MAX_ANSWER_BYTES)
}

export function decodeAnswer (bytes: Uint8Array): Observation[] {
  const parsed = answerSchema.safeParse(decodeJson(bytes, MAX_ANSWER_BYTES))
  if (!parsed.success) throw new FreshWireError('malformed', 'not a freshness answer')
  return parsed.data.observations
}

// a tie in age goes to the path that is cheapest to use again
const rank = (p: PathKind | null): number => p === null ? 4 : { 'direct-lan': 0, 'direct-wan': 1, 'hole-punched': 2, relayed: 3 }[p]

/**
 * The addresses to dial for a node, freshest sighting first (ties: the better path), each address
 * once; addresses that just failed, relayed addresses (the relay path is tried on its own) and
 * sightings older than `maxAgeMs` are left out. Our own sighting competes like any other.
 */
export function dialOrder (sightings: readonly Sighting[], failed: ReadonlySet<string>, maxAgeMs: number): string[] {
  const usable = sightings
    .filter((s) => s.ageMs <= maxAgeMs)
    .sort((a, b) => a.ageMs - b.ageMs || rank(a.path) - rank(b.path) || (a.from < b.from ? -1 : a.from > b.from ? 1 : 0))
  const out: string[] = []
  for (const s of usable) {
    for (const a of s.addresses) {
      if (!failed.has(a) && !a.includes('/p2p-circuit') && !out.includes(a)) out.push(a)
    }
  }
  return out
}
