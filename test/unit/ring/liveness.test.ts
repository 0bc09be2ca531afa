import { describe, expect, it } from 'vitest'
import { lanDefaults, loopbackTestConfig } from '../../../src/ring/liveness-config.js'
import { onDisconnect, onHeartbeat, onPingReply, onTick, type MemberLiveness, type Step } from '../../../src/ring/liveness.js'

const cfg = lanDefaults()
const hb = (incarnation: number, seq: number, leaving = false) => ({ nodeId: 'n1', incarnation, seq, leaving })
const member = (over: Partial<MemberLiveness> = {}): MemberLiveness =>
  ({ nodeId: 'n1', incarnation: 5, seq: 10, state: 'online', lastHeardMs: 1000, sinceMs: 0, ...over })
const setOf = (s: Step): MemberLiveness => { if (s.kind !== 'set') throw new Error(`expected set, got ${s.reason}`); return s.member }

describe('liveness config', () => {
  it('LAN defaults: a dead member is out within ~6 s, one lost heartbeat does not even make it suspect', () => {
    expect(cfg.offlineAfterMs + cfg.tickIntervalMs).toBeLessThanOrEqual(6000)
    expect(cfg.suspectAfterMs).toBeGreaterThan(2 * cfg.heartbeatIntervalMs)
    expect(cfg.pingTimeoutMs).toBeLessThan(cfg.offlineAfterMs - cfg.suspectAfterMs)
  })
  it('loopback profile keeps the order of the timers', () => {
    const t = loopbackTestConfig()
    expect(t.heartbeatIntervalMs).toBeLessThan(t.suspectAfterMs)
    expect(t.suspectAfterMs).toBeLessThan(t.offlineAfterMs)
  })
})

describe('onHeartbeat', () => {
  it.each<[string, MemberLiveness | undefined, ReturnType<typeof hb>, Partial<MemberLiveness> | string]>([
    ['new member → online', undefined, hb(1, 1), { state: 'online', incarnation: 1, seq: 1, lastHeardMs: 5000, sinceMs: 5000 }],
    ['goodbye from a stranger → offline (left)', undefined, hb(1, 1, true), { state: 'offline', offlineCause: 'left' }],
    ['older incarnation → ignored', member(), hb(4, 99), 'stale-incarnation'],
    ['same seq again (duplicate) → ignored', member(), hb(5, 10), 'replay'],
    ['older seq (replay) → ignored', member(), hb(5, 3), 'replay'],
    ['newer seq keeps online since', member(), hb(5, 11), { state: 'online', seq: 11, lastHeardMs: 5000, sinceMs: 0 }],
    ['suspect → online again', member({ state: 'suspect' }), hb(5, 11), { state: 'online', sinceMs: 5000 }],
    ['timed-out member heard again → online', member({ state: 'offline', offlineCause: 'timeout' }), hb(5, 11), { state: 'online', offlineCause: undefined }],
    ['restart (higher incarnation, seq starts over) → online', member({ state: 'offline' }), hb(6, 1), { state: 'online', incarnation: 6, seq: 1 }],
    ['goodbye → offline at once', member(), hb(5, 11, true), { state: 'offline', offlineCause: 'left', sinceMs: 5000 }]
  ])('%s', (_name, prev, claim, expected) => {
    const step = onHeartbeat(prev, claim, 5000)
    if (typeof expected === 'string') expect(step).toEqual({ kind: 'ignore', reason: expected })
    else expect(setOf(step)).toMatchObject(expected)
  })
})

describe('onTick', () => {
  it.each<[string, MemberLiveness, number, string]>([
    ['quiet for less than suspectAfter', member(), 1000 + cfg.suspectAfterMs - 1, 'online'],
    ['one lost heartbeat (2 s gap)', member(), 1000 + 2 * cfg.heartbeatIntervalMs, 'online'],
    ['quiet for suspectAfter', member(), 1000 + cfg.suspectAfterMs, 'suspect'],
    ['quiet for offlineAfter', member(), 1000 + cfg.offlineAfterMs, 'offline'],
    ['suspect quiet for offlineAfter', member({ state: 'suspect' }), 1000 + cfg.offlineAfterMs, 'offline'],
    ['straight from online to offline after a long pause', member(), 1000 + 60_000, 'offline']
  ])('%s → %s', (_name, prev, now, state) => {
    const step = onTick(prev, now, cfg)
    expect(step.kind === 'set' ? step.member.state : prev.state).toBe(state)
  })

  it('an offline member stays offline and records why', () => {
    const gone = setOf(onTick(member(), 1000 + cfg.offlineAfterMs, cfg))
    expect(gone).toMatchObject({ offlineCause: 'timeout', sinceMs: 1000 + cfg.offlineAfterMs })
    expect(onTick(gone, 1e9, cfg)).toEqual({ kind: 'ignore', reason: 'offline' })
  })
})

describe('onPingReply and onDisconnect', () => {
  it('a ping reply keeps a suspect member in, and pushes its deadline back', () => {
    const back = setOf(onPingReply(member({ state: 'suspect' }), 4000))
    expect(back).toMatchObject({ state: 'online', lastHeardMs: 4000 })
    expect(onTick(back, 4000 + cfg.offlineAfterMs - 1, cfg)).not.toMatchObject({ member: { state: 'offline' } })
  })
  it('a ping reply does not bring back an offline member (only a signed heartbeat does)', () => {
    expect(onPingReply(member({ state: 'offline' }), 4000)).toEqual({ kind: 'ignore', reason: 'offline' })
  })
  it('a closed connection only makes an online member suspect; its deadline stays', () => {
    const s = setOf(onDisconnect(member(), 2000))
    expect(s).toMatchObject({ state: 'suspect', lastHeardMs: 1000, sinceMs: 2000 })
    expect(onDisconnect(s, 2100)).toEqual({ kind: 'ignore', reason: 'unchanged' })
    expect(setOf(onTick(s, 1000 + cfg.offlineAfterMs, cfg)).state).toBe('offline')
  })
})
