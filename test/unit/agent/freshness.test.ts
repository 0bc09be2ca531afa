import { describe, expect, it } from 'vitest'
import {
  decodeAnswer, decodeQuery, dialOrder, encodeAnswer, encodeQuery, FreshWireError, MAX_ANSWER_BYTES, MAX_QUERY_BYTES,
  type Observation, type Sighting
} from '../../../src/agent/net/freshness.js'

const POOL = 'a'.repeat(64)
const NODE = '12D3KooWGzTYPjS2YvGQ9qVnZ8rbVXgBmoYcRPEiqU3Z8E8nGaQb'
const bytes = (s: string): Uint8Array => Buffer.from(s)

const seen = (from: string, ageMs: number, addresses: string[], path: Observation['path'] = 'direct-lan'): Sighting =>
  ({ from, ageMs, path, endpoint: null, addresses })

describe('freshness wire', () => {
  it('a query is this exact JSON, and decodes back', () => {
    const q = encodeQuery({ poolId: POOL, nodeId: NODE })
    expect(Buffer.from(q).toString()).toBe(`{"poolId":"${POOL}","nodeId":"${NODE}"}`)
    expect(decodeQuery(q)).toEqual({ poolId: POOL, nodeId: NODE })
  })

  it('an answer round-trips; what we know is trimmed to the bounds, never refused for being big', () => {
    const o: Observation = { ageMs: 1234.6, path: 'hole-punched', endpoint: `/ip4/11.0.0.10/udp/4242/webrtc/p2p/${NODE}`, addresses: Array.from({ length: 20 }, (_, i) => `/ip4/192.168.1.${i}/tcp/4001`) }
    const wire = encodeAnswer(Array.from({ length: 9 }, () => o))
    expect(wire.byteLength).toBeLessThanOrEqual(MAX_ANSWER_BYTES)
    const back = decodeAnswer(wire)
    expect(back).toHaveLength(4)
    expect(back[0]).toEqual({ ...o, ageMs: 1235, addresses: o.addresses.slice(0, 8) })
    expect(decodeAnswer(encodeAnswer([{ ageMs: 5, path: null, endpoint: null, addresses: [] }]))).toEqual([{ ageMs: 5, path: null, endpoint: null, addresses: [] }])
  })

  it('hostile bytes are refused by reason before anything is believed', () => {
    const reason = (f: () => unknown): string => { try { f(); return 'accepted' } catch (e) { return e instanceof FreshWireError ? e.reason : `other: ${String(e)}` } }
    expect(reason(() => decodeQuery(new Uint8Array(MAX_QUERY_BYTES + 1)))).toBe('oversized')
    expect(reason(() => decodeAnswer(new Uint8Array(MAX_ANSWER_BYTES + 1)))).toBe('oversized')
    expect(reason(() => decodeQuery(bytes('{"poolId":')))).toBe('malformed')
    expect(reason(() => decodeQuery(bytes(`{"poolId":"${POOL}","nodeId":"${NODE}","x":1}`)))).toBe('malformed') // unknown key
    expect(reason(() => decodeQuery(bytes(`{"poolId":"${POOL.toUpperCase()}","nodeId":"${NODE}"}`)))).toBe('malformed')
    expect(reason(() => decodeQuery(bytes(`{"poolId":"${POOL}","nodeId":"0OIl"}`)))).toBe('malformed')
    const obs = (o: Record<string, unknown>): string => reason(() => decodeAnswer(bytes(JSON.stringify({ observations: [{ ageMs: 1, path: 'relayed', endpoint: null, addresses: [], ...o }] }))))
    expect(obs({})).toBe('accepted')
    expect(obs({ ageMs: -1 })).toBe('malformed')
    expect(obs({ ageMs: 1.5 })).toBe('malformed')
    expect(obs({ ageMs: 86_400_001 })).toBe('malformed') // older than a day says nothing
    expect(obs({ path: 'teleport' })).toBe('malformed')
    expect(obs({ addresses: ['not-a-multiaddr'] })).toBe('malformed')
    expect(obs({ addresses: Array.from({ length: 9 }, () => '/ip4/1.2.3.4/tcp/1') })).toBe('malformed')
    expect(reason(() => decodeAnswer(bytes(JSON.stringify({ observations: Array.from({ length: 5 }, () => ({ ageMs: 1, path: 'relayed', endpoint: null, addresses: [] })) }))))).toBe('malformed')
  })
})

describe('dialOrder: what to dial after a member was lost', () => {
  const A = '/ip4/192.168.1.10/tcp/4001'
  const B = '/ip4/192.168.1.20/tcp/4001'
  const C = '/ip4/11.0.0.10/tcp/4001'
  const R = '/ip4/11.0.0.2/tcp/4001/p2p/RELAY/p2p-circuit'
  const cases: Array<[string, Sighting[], string[], string[]]> = [
    ['nobody heard it', [], [], []],
    ['the freshest sighting first, whoever made it', [seen('self', 9000, [A]), seen('m1', 300, [B]), seen('m2', 4000, [C])], [], [B, C, A]],
    ['an address that just failed is left out, the next sighting used', [seen('m1', 300, [A]), seen('m2', 700, [B])], [A], [B]],
    ['each address once, at its freshest place', [seen('m1', 10, [A, B]), seen('m2', 20, [B, C])], [], [A, B, C]],
    ['a tie in age goes to the better path', [seen('m1', 50, [C], 'relayed'), seen('m2', 50, [A], 'direct-lan')], [], [A, C]],
    ['relayed addresses are not freshness answers (the relay path is tried anyway)', [seen('m1', 10, [R, A])], [], [A]],
    ['too old to mean anything', [seen('m1', 600_001, [A]), seen('m2', 10, [B])], [], [B]]
  ]
  for (const [what, sightings, failed, want] of cases) {
    it(what, () => { expect(dialOrder(sightings, new Set(failed), 600_000)).toEqual(want) })
  }

  it('does not reorder the caller\'s array', () => {
    const s = [seen('m2', 40, [B]), seen('m1', 10, [A])]
    dialOrder(s, new Set(), 600_000)
    expect(s.map((x) => x.from)).toEqual(['m2', 'm1'])
  })
})
