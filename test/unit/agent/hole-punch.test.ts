import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { connectionPath, isPrivateIPv4 } from '../../../src/agent/net/connection-path.js'
import { backoffMs, HolePuncher, iceServersFor, punchStep, relayOf, webrtcAddress, type PunchState } from '../../../src/agent/net/hole-punch.js'

const RELAY = '/ip4/11.0.0.2/tcp/4001/p2p/12D3KooWRelay'
const SMALL = '12D3KooWAAAA'
const BIG = '12D3KooWZZZZ'

describe('connection paths', () => {
  const cases: Array<[string, string]> = [
    ['/ip4/192.168.1.10/tcp/4001/p2p/X', 'direct-lan'],
    ['/ip4/10.77.0.2/tcp/4001', 'direct-lan'],
    ['/ip4/172.20.0.2/tcp/4001', 'direct-lan'],
    ['/ip4/172.32.0.2/tcp/4001', 'direct-wan'],
    ['/ip4/11.0.0.10/tcp/33012/p2p/X', 'direct-wan'],
    [`${RELAY}/p2p-circuit/p2p/X`, 'relayed'],
    [`${RELAY}/p2p-circuit/webrtc/p2p/X`, 'hole-punched'],
    ['/webrtc/p2p/X', 'hole-punched']
  ]
  for (const [addr, kind] of cases) it(`${addr} is ${kind}`, () => { expect(connectionPath(addr)).toBe(kind) })
  it('private ranges as js-libp2p counts them', () => {
    expect(['10.0.0.1', '100.64.0.1', '127.0.0.1', '169.254.1.1', '192.168.0.1'].map(isPrivateIPv4)).toEqual([true, true, true, true, true])
    expect(['11.0.0.1', '100.128.0.1', '8.8.8.8', 'not an ip', '192.169.0.1'].map(isPrivateIPv4)).toEqual([false, false, false, false, false])
  })
})

describe('hole punching decisions', () => {
  it('ICE asks the relays\' STUN responders, each host once, never a public STUN service', () => {
    expect(iceServersFor([RELAY, '/ip4/11.0.0.2/tcp/4002/p2p/Other', '/dns4/relay.example/tcp/4001/p2p/R'], 3478))
      .toEqual([{ urls: ['stun:11.0.0.2:3478'] }, { urls: ['stun:relay.example:3478'] }])
    expect(iceServersFor([], 3478)).toEqual([])
  })

  it('addresses: the WebRTC dial goes through the relay; only a relayed connection has a relay', () => {
    expect(webrtcAddress(RELAY, BIG)).toBe(`${RELAY}/p2p-circuit/webrtc/p2p/${BIG}`)
    expect(relayOf(`${RELAY}/p2p-circuit/p2p/${BIG}`)).toBe(RELAY)
    expect(relayOf(`${RELAY}/p2p-circuit/webrtc/p2p/${BIG}`)).toBeUndefined()
    expect(relayOf('/ip4/192.168.1.2/tcp/4001')).toBeUndefined()
  })

  const cone = { self: 'cone' as const, peer: undefined }
  const cases: Array<[string, PunchState | undefined, string, string, { self: 'cone' | 'symmetric' | 'unknown', peer: 'symmetric' | undefined }, number, ReturnType<typeof punchStep>]> = [
    ['first time: try', undefined, SMALL, BIG, cone, 0, { kind: 'attempt' }],
    ['the larger id waits for the offer', undefined, BIG, SMALL, cone, 0, { kind: 'skip', reason: 'peer-starts' }],
    ['both symmetric: never', undefined, SMALL, BIG, { self: 'symmetric', peer: 'symmetric' }, 0, { kind: 'skip', reason: 'both-symmetric' }],
    ['symmetric on one side only: try (ICE decides)', undefined, SMALL, BIG, { self: 'symmetric', peer: undefined }, 0, { kind: 'attempt' }],
    ['one attempt at a time', { failures: 0, nextAtMs: 0, inFlight: true }, SMALL, BIG, cone, 10, { kind: 'skip', reason: 'in-flight' }],
    ['backing off', { failures: 1, nextAtMs: 5000, inFlight: false }, SMALL, BIG, cone, 4999, { kind: 'wait', untilMs: 5000 }],
    ['backed off long enough', { failures: 1, nextAtMs: 5000, inFlight: false }, SMALL, BIG, cone, 5000, { kind: 'attempt' }]
  ]
  for (const [what, s, self, peer, nat, now, want] of cases) it(what, () => { expect(punchStep(s, self, peer, nat, now)).toEqual(want) })

  it('a member announcing a public address is dialled by either side', () => {
    expect(punchStep(undefined, BIG, SMALL, cone, 0, true)).toEqual({ kind: 'attempt' })
  })

  it('backs off 5 s, 15 s, 45 s … up to 5 minutes', () => {
    expect([1, 2, 3, 4, 5, 6, 20].map(backoffMs)).toEqual([5000, 15_000, 45_000, 135_000, 300_000, 300_000, 300_000])
  })
})

describe('HolePuncher', () => {
  type Relayed = Array<{ nodeId: string, relay: string | undefined, publicAddrs: string[] }>
  function rig (outcome: () => Promise<void>, direct: () => Promise<void> = async () => { throw new Error('refused') }): { p: HolePuncher, dials: string[], clock: { t: number }, relayed: Relayed } {
    const dials: string[] = []
    const clock = { t: 0 }
    const relayed: Relayed = [{ nodeId: BIG, relay: RELAY, publicAddrs: [] }]
    const p = new HolePuncher({
      selfId: SMALL,
      relayedMembers: () => relayed,
      dial: async (addr) => { dials.push(addr); await outcome() },
      dialDirect: async (_id, addrs) => { dials.push(...addrs); await direct() },
      nat: () => undefined,
      log: pino({ level: 'silent' }),
      now: () => clock.t
    })
    return { p, dials, clock, relayed }
  }
  const settle = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

  it('a failed punch is retried only after its backoff; a member no longer relayed is forgotten', async () => {
    const { p, dials, clock, relayed } = rig(async () => { throw new Error('ICE failed') })
    p.tick(); p.tick() // the second tick finds the attempt in flight
    await settle()
    expect(dials).toEqual([webrtcAddress(RELAY, BIG)])
    expect(p.stats()).toMatchObject({ attempts: 1, failed: 1, succeeded: 0, lastError: 'ICE failed' })
    clock.t = 4999; p.tick(); await settle()
    expect(dials).toHaveLength(1)
    clock.t = 5000; p.tick(); await settle()
    expect(dials).toHaveLength(2)
    clock.t = 5000 + 14_999; p.tick(); await settle()
    expect(dials).toHaveLength(2) // second backoff: 15 s
    relayed.length = 0; p.tick() // went direct (or away): state dropped
    relayed.push({ nodeId: BIG, relay: RELAY, publicAddrs: [] }); p.tick(); await settle()
    expect(dials).toHaveLength(3)
  })

  it('a public address is dialled directly first; WebRTC only when that fails', async () => {
    const direct = rig(async () => {}, async () => {})
    direct.relayed[0] = { nodeId: BIG, relay: RELAY, publicAddrs: ['/ip4/11.0.0.3/tcp/4001'] }
    direct.p.tick(); await settle()
    expect(direct.dials).toEqual(['/ip4/11.0.0.3/tcp/4001'])
    const fallback = rig(async () => {})
    fallback.relayed[0] = { nodeId: BIG, relay: RELAY, publicAddrs: ['/ip4/11.0.0.3/tcp/4001'] }
    fallback.p.tick(); await settle(); await settle()
    expect(fallback.dials).toEqual(['/ip4/11.0.0.3/tcp/4001', webrtcAddress(RELAY, BIG)])
    expect(fallback.p.stats()).toMatchObject({ succeeded: 1 })
  })

  it('a hole-punched member announcing a public address is still dialled directly; one without is left alone', async () => {
    const r = rig(async () => {}, async () => {})
    r.relayed[0] = { nodeId: BIG, relay: undefined, publicAddrs: [] }
    r.p.tick(); await settle()
    expect(r.dials).toEqual([])
    r.relayed[0] = { nodeId: BIG, relay: undefined, publicAddrs: ['/ip4/11.0.0.3/tcp/4001'] }
    r.p.tick(); await settle()
    expect(r.dials).toEqual(['/ip4/11.0.0.3/tcp/4001'])
  })

  it('a punch that works is counted with its duration', async () => {
    const { p, clock } = rig(async () => { clock.t += 420 })
    p.tick(); await settle()
    expect(p.stats()).toMatchObject({ attempts: 1, succeeded: 1, failed: 0, lastMs: 420 })
  })
})
