/** The NAT block of pool-status (natBlock), public addresses (publicTransportAddrs), the relays' STUN targets, and the bootstrap dialer's backoff. */
import { describe, expect, it, vi } from 'vitest'
import { BootstrapDialer, bootstrapBackoff } from '../../../src/agent/net/bootstrap-dialer.js'
import type { Logger } from '../../../src/agent/log.js'
import { memberStunTargets, NatDetector, stunTargets, type NatStatus } from '../../../src/agent/net/nat-detector.js'
import { StunResponder } from '../../../src/nat/stun-server.js'
import { natBlock, type ConnectionFact } from '../../../src/agent/net/nat-status.js'
import { publicTransportAddrs } from '../../../src/agent/net/public-addresses.js'
import { fixedDevice } from '../../helpers/pool-fixtures.js'

const silent = { info: () => {}, warn: () => {}, debug: () => {}, error: () => {} } as unknown as Logger
const R = fixedDevice(5).nodeId
const A = fixedDevice(6).nodeId
const B = fixedDevice(7).nodeId
const relay = `/ip4/11.0.0.2/tcp/4001/p2p/${R}`
const nat: NatStatus = { protocol: 'udp', type: 'cone', reason: 'same mapping', publicEndpoint: '11.0.0.10:40000', hairpin: false, servers: [], measuredAt: null, drops: {} }

describe('publicTransportAddrs', () => {
  it('keeps public IPv4 addresses only', () => {
    expect(publicTransportAddrs(['/ip4/11.0.0.2/tcp/4001', '/ip4/192.168.1.5/tcp/1', '/ip4/10.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/1', '/ip4/100.64.0.1/tcp/1', '/ip4/0.0.0.0/tcp/1',
      `${relay}/p2p-circuit/p2p/${A}`, '/ip4/203.0.113.9/tcp/2', '/ip4/8.8.8.8/udp/9/quic-v1'])).toEqual(['/ip4/11.0.0.2/tcp/4001', '/ip4/8.8.8.8/udp/9/quic-v1'])
  })
})

describe('stunTargets', () => {
  it('one STUN endpoint per relay host', () => {
    expect(stunTargets([relay, `/ip4/11.0.0.2/tcp/4002/p2p/${A}`, `/dns4/relay.example/tcp/4001/p2p/${R}`, 'garbage'], 3478))
      .toEqual([{ address: '11.0.0.2', port: 3478 }, { address: 'relay.example', port: 3478 }])
  })
})

describe('memberStunTargets', () => {
  it('a member\'s public TCP address names its STUN port; private and relayed ones none', () => {
    expect(memberStunTargets(['/ip4/11.0.0.3/tcp/4002/p2p/x', '/ip4/192.168.1.5/tcp/4002', `${relay}/p2p-circuit/p2p/${A}`, '/ip4/11.0.0.3/tcp/4002'])).toEqual([{ address: '11.0.0.3', port: 4002 }])
  })
})

describe('NatDetector', () => {
  it('measures at the members\' STUN responders too, and reports UDP behaviour', async () => {
    const responders = [new StunResponder({ host: '127.0.0.1', ports: [0] }), new StunResponder({ host: '127.0.0.1', ports: [0] })]
    for (const r of responders) await r.start()
    const d = new NatDetector({ checkMs: 50 }, { relays: () => [], members: () => responders.map((r) => ({ address: '127.0.0.1', port: r.ports()[0] as number })), log: silent })
    try {
      expect(d.status()).toMatchObject({ type: 'unknown', measuredAt: null })
      d.start()
      await vi.waitFor(() => { expect(d.status().measuredAt).not.toBeNull() }, { timeout: 5000, interval: 20 })
      expect(d.status()).toMatchObject({ protocol: 'udp', type: 'public', hairpin: true })
      expect(d.status().servers.map((x) => x.server).sort()).toEqual(responders.map((r) => `127.0.0.1:${r.ports()[0] ?? 0}`).sort())
    } finally {
      await d.stop()
      for (const r of responders) r.stop()
    }
  })
})

describe('natBlock', () => {
  const conns: ConnectionFact[] = [
    { nodeId: A, remoteAddr: `${relay}/p2p-circuit/p2p/${A}`, member: true, rttMs: 3, limits: { bytes: String(2 ** 30), seconds: 3_600_000 } },
    { nodeId: A, remoteAddr: '/ip4/11.0.0.11/tcp/5000', member: true, rttMs: 1, limits: null },
    { nodeId: B, remoteAddr: '/ip4/192.168.1.11/tcp/6000', member: true, rttMs: 0.4, limits: null },
    { nodeId: R, remoteAddr: relay, member: false, rttMs: 1, limits: null }
  ]
  const now = Date.UTC(2026, 11, 7, 12)
  const block = natBlock({
    nat,
    listenAddresses: ['/ip4/192.168.1.10/tcp/1234', `${relay}/p2p-circuit/p2p/${B}`],
    relays: [{ relay, reserved: true, expiresAt: '2026-12-07T14:00:00.000Z' }],
    connections: conns,
    members: [
      { poolId: 'p', nodeId: A, name: 'a', status: 'ONLINE', heardAgoMs: 500 },
      { poolId: 'p', nodeId: B, name: 'b', status: 'ONLINE', heardAgoMs: null },
      { poolId: 'p', nodeId: fixedDevice(8).nodeId, name: 'gone', status: 'OFFLINE', heardAgoMs: 60_000 }
    ],
    bootstrap: [],
    now
  })

  it('counts member connections by path (not the relay hop itself)', () => {
    expect(block.connections).toEqual({ 'direct-lan': 1, 'direct-wan': 1, 'hole-punched': 0, relayed: 1 })
  })

  it('gives each member the path traffic takes: direct before relayed', () => {
    expect(block.members.map((m) => [m.name, m.path, m.address, m.rttMs, m.lastSeen])).toEqual([
      ['a', 'direct-wan', '/ip4/11.0.0.11/tcp/5000', 1, new Date(now - 500).toISOString()],
      ['b', 'direct-lan', '/ip4/192.168.1.11/tcp/6000', 0.4, null],
      ['gone', null, null, null, new Date(now - 60_000).toISOString()]
    ])
  })

  it('reachable through the relay, with the limits of relayed connections', () => {
    expect(block.reachability.kind).toBe('relayed')
    expect(block.relays).toEqual([{ relay, reserved: true, expiresAt: '2026-12-07T14:00:00.000Z', limits: { bytes: String(2 ** 30), seconds: 3_600_000 } }])
    const pub = natBlock({ nat, listenAddresses: ['/ip4/11.0.0.3/tcp/4002'], relays: [], connections: [], members: [], bootstrap: [], now })
    expect(pub.reachability).toEqual({ kind: 'public', detail: 'dialable at /ip4/11.0.0.3/tcp/4002' })
    expect(natBlock({ nat, listenAddresses: ['/ip4/192.168.1.10/tcp/1'], relays: [{ relay, reserved: false, expiresAt: null }], connections: [], members: [], bootstrap: [], now }).reachability.kind).toBe('lan-only')
  })
})

describe('BootstrapDialer', () => {
  it('redials a peer that is down with growing delays, stops once connected, and refuses an impostor', async () => {
    const clock = { now: 0 }
    const dials: number[] = []
    let answer: 'down' | 'impostor' | 'ok' = 'down'
    let connected = false
    const hungUp: string[] = []
    const d = new BootstrapDialer([{ addr: `/ip4/11.0.0.3/tcp/4002/p2p/${A}`, peerId: A }], bootstrapBackoff(), {
      dial: async () => {
        dials.push(clock.now)
        if (answer === 'down') throw new Error('ECONNREFUSED')
        if (answer === 'impostor') return B
        connected = true
        return A
      },
      connected: () => connected,
      hangUp: (p) => { hungUp.push(p) },
      clock: () => clock.now,
      random: () => 0.5,
      log: silent
    })
    const tick = async (): Promise<void> => { (d as unknown as { tick: () => void }).tick(); await new Promise((resolve) => setImmediate(resolve)) }
    for (let t = 0; t <= 8000; t += 500) { clock.now = t; await tick() }
    expect(dials).toEqual([0, 1000, 3000, 7000]) // 1 s, 2 s, 4 s apart
    expect(d.status()[0]).toMatchObject({ connected: false, failures: 4, lastError: 'ECONNREFUSED' })
    answer = 'impostor'
    clock.now = 15_000; await tick()
    expect(hungUp).toEqual([B])
    expect(d.status()[0]?.lastError).toMatch(/answered by .*, not /)
    answer = 'ok'
    clock.now = 60_000; await tick()
    clock.now = 61_000; await tick(); await tick()
    expect(d.status()[0]).toMatchObject({ connected: true, failures: 0, lastError: null })
    expect(dials).toHaveLength(6)
  })
})
