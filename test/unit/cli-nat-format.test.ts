import { describe, expect, it } from 'vitest'
import type { NatBlock } from '../../src/agent/net/nat-status.js'
import { natText, peerPaths } from '../../src/cli/nat-format.js'

const now = Date.UTC(2026, 11, 7, 12, 0, 0)
const relay = '/ip4/11.0.0.2/tcp/4001/p2p/12D3KooWRelay'
const block: NatBlock = {
  nat: { protocol: 'udp', type: 'symmetric', reason: '2 different mappings towards 2 destinations', publicEndpoint: '11.0.0.11:*', hairpin: false, servers: [{ server: '11.0.0.2:3478', mapped: '11.0.0.11:5001', rttMs: 0.4 }, { server: '11.0.0.2:3479', mapped: '11.0.0.11:61234', rttMs: 0.3 }], measuredAt: new Date(now - 5000).toISOString(), drops: {} },
  reachability: { kind: 'relayed', detail: `members outside this LAN reach it through ${relay}` },
  relays: [{ relay, reserved: true, expiresAt: '2026-12-07T14:00:00.000Z', limits: { bytes: String(2 ** 30), seconds: 3_600_000 } }],
  connections: { 'direct-lan': 0, 'direct-wan': 0, 'hole-punched': 0, relayed: 1 },
  members: [{ poolId: 'p', nodeId: '12D3KooWAdmin', name: 'admin', status: 'ONLINE', path: 'relayed', address: `${relay}/p2p-circuit/p2p/12D3KooWAdmin`, rttMs: 2, lastSeen: new Date(now - 1000).toISOString() }],
  bootstrap: [{ addr: `${relay}/p2p-circuit/p2p/12D3KooWAdmin`, peerId: '12D3KooWAdmin', connected: true, failures: 0, lastError: null }]
}

describe('natText', () => {
  it('says the NAT type, how it was measured, reachability, relay, bootstrap, paths and members', () => {
    const lines = natText({ nat: block, net: { addresses: ['/ip4/192.168.2.10/tcp/4002', `${relay}/p2p-circuit/p2p/12D3KooWMe`] } as never }, now).split('\n')
    expect(lines.slice(0, 6)).toEqual([
      'NAT: symmetric, public endpoint 11.0.0.11:*, hairpin no (UDP, by STUN at 11.0.0.2:3478, 11.0.0.2:3479 5s ago: 2 different mappings towards 2 destinations)',
      `Reachable: relayed (members outside this LAN reach it through ${relay})`,
      `Addresses: /ip4/192.168.2.10/tcp/4002 ${relay}/p2p-circuit/p2p/12D3KooWMe`,
      `Relay ${relay}: reservation until 2026-12-07T14:00:00.000Z; relayed connections limited: 1024 MiB left (both directions), 3600000 s as libp2p reports it`,
      `Bootstrap ${relay}/p2p-circuit/p2p/12D3KooWAdmin: connected`,
      'Connections to members: direct-lan 0, direct-wan 0, hole-punched 0, relayed 1'
    ])
    expect(lines[6]).toMatch(/^MEMBER +NODE ID +STATUS +PATH +ADDRESS +RTT +LAST SEEN$/)
    expect(lines[7]).toMatch(new RegExp(`^admin +12D3KooWAdmin +ONLINE +relayed +${relay.replace(/\//g, '\\/')}\\/p2p-circuit\\/p2p\\/12D3KooWAdmin +2 ms +1s ago$`))
    expect(lines).toHaveLength(8)
    expect([...peerPaths(block, 'p')]).toEqual([['12D3KooWAdmin', 'relayed']])
    expect([...peerPaths(block, 'other')]).toEqual([])
  })
})
