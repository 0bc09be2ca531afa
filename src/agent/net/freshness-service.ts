/**
 * Freshness queries, the I/O half: serve `/mesh/fresh/1.0.0` to admitted members, and ask the
 * connected members of a pool where a lost node was last heard (freshness.ts has the wire and the
 * choice). A query or answer that is too big, malformed or late is dropped and counted, never
 * parsed beyond its bound.
 */
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import type { Logger } from '../log.js'
import {
  decodeAnswer, decodeQuery, dialOrder, encodeAnswer, encodeQuery, FRESH_PROTOCOL, FreshWireError, MAX_AGE_MS,
  MAX_ANSWER_BYTES, MAX_QUERY_BYTES, type FreshDrop, type Observation, type Sighting
} from './freshness.js'

/** What the service needs of the pool network. */
export interface FreshnessNet {
  handleMemberProtocol: (protocol: string, handler: (stream: Stream, nodeId: string) => Promise<void>, maxInboundStreams: number) => Promise<void>
  openMemberStream: (nodeId: string, protocol: string, signal: AbortSignal) => Promise<Stream>
  isAdmitted: (nodeId: string, poolId: string) => boolean
  /** connected, admitted members of the pool, but not us */
  connectedMembers: (poolId: string) => string[]
}

export interface FreshnessComponents {
  readonly net: FreshnessNet
  /** what we know of a member of a pool (undefined: not a member, or never heard) */
  readonly observe: (poolId: string, nodeId: string) => Observation | undefined
  readonly selfId: string
  readonly log: Logger
}

export interface FreshnessInit {
  /** how long one member gets to answer */
  readonly answerTimeoutMs?: number
  /** observations older than this are not dialled */
  readonly maxAgeMs?: number
}

export interface FreshnessStats {
  /** queries we sent, answers that came back, queries we answered, asks that found an address to dial */
  queries: number
  answers: number
  served: number
  found: number
  drops: Partial<Record<FreshDrop, number>>
}

export class FreshnessService {
  private readonly answerTimeoutMs: number
  private readonly maxAgeMs: number
  private readonly counts: FreshnessStats = { queries: 0, answers: 0, served: 0, found: 0, drops: {} }

  constructor (private readonly c: FreshnessComponents, init: FreshnessInit = {}) {
    // a member on a LAN answers in a millisecond, through a relay in tens
    this.answerTimeoutMs = init.answerTimeoutMs ?? 2000
    this.maxAgeMs = init.maxAgeMs ?? 10 * 60_000
  }

  async start (): Promise<void> {
    await this.c.net.handleMemberProtocol(FRESH_PROTOCOL, async (stream, from) => { await this.serve(stream, from) }, 8)
  }

  stop (): void {}

  stats (): FreshnessStats { return { ...this.counts, drops: { ...this.counts.drops } } }

  private drop (reason: FreshDrop): void {
    this.counts.drops[reason] = (this.counts.drops[reason] ?? 0) + 1
  }

  /** Answer one query: only about members of a pool the asker is admitted to, so nothing leaks across pools. */
  private async serve (stream: Stream, from: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_QUERY_BYTES })
    try {
      const q = decodeQuery((await lp.read({ signal: AbortSignal.timeout(this.answerTimeoutMs) })).subarray())
      const admitted = this.c.net.isAdmitted(from, q.poolId)
      if (!admitted) this.drop('not-member') // answered, with nothing
      const known = admitted ? this.c.observe(q.poolId, q.nodeId) : undefined
      await lp.write(encodeAnswer(known === undefined ? [] : [known]))
      await stream.close()
      this.counts.served++
    } catch (err) {
      this.drop(reasonOf(err))
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /**
   * Ask every other connected member of the pool where `nodeId` was last heard, then order the
   * addresses to dial (ours among the sightings). `failed`: addresses that just did not work.
   */
  async ask (poolId: string, nodeId: string, failed: ReadonlySet<string>): Promise<{ addresses: string[], sightings: Sighting[] }> {
    const askees = this.c.net.connectedMembers(poolId).filter((m) => m !== nodeId && m !== this.c.selfId)
    const answers = await Promise.all(askees.map(async (m) => await this.askOne(m, poolId, nodeId)))
    const own = this.c.observe(poolId, nodeId)
    const sightings: Sighting[] = [...(own === undefined ? [] : [{ ...own, from: this.c.selfId }]), ...answers.flat()]
    const addresses = dialOrder(sightings, failed, this.maxAgeMs)
    if (addresses.length > 0) this.counts.found++
    this.c.log.debug({ nodeId, asked: askees.length, sightings: sightings.map((s) => ({ from: s.from, ageMs: s.ageMs, path: s.path })), addresses }, 'freshness query')
    return { addresses, sightings }
  }

  private async askOne (member: string, poolId: string, nodeId: string): Promise<Sighting[]> {
    this.counts.queries++
    let stream: Stream | undefined
    try {
      const signal = AbortSignal.timeout(this.answerTimeoutMs)
      stream = await this.c.net.openMemberStream(member, FRESH_PROTOCOL, signal)
      const lp = lpStream(stream, { maxDataLength: MAX_ANSWER_BYTES })
      await lp.write(encodeQuery({ poolId, nodeId }))
      const observations = decodeAnswer((await lp.read({ signal })).subarray())
      await stream.close()
      this.counts.answers++
      return observations.filter((o) => o.ageMs <= MAX_AGE_MS).map((o) => ({ ...o, from: member }))
    } catch (err) {
      this.drop(reasonOf(err))
      stream?.abort(err instanceof Error ? err : new Error(String(err)))
      return []
    }
  }
}

function reasonOf (err: unknown): FreshDrop {
  if (err instanceof FreshWireError) return err.reason
  const name = err instanceof Error ? err.name : ''
  if (name === 'InvalidDataLengthError') return 'oversized'
  if (name === 'TimeoutError' || name === 'AbortError') return 'timeout'
  return 'stream-error'
}

/** Two-stage factory: options now, collaborators when the pool network wires them. */
export const freshness = (init: FreshnessInit = {}) => (c: FreshnessComponents): FreshnessService => new FreshnessService(c, init)
