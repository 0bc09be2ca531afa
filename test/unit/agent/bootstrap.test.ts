/**
 * Bootstrap entries (src/agent/net/bootstrap.ts, config.ts): the three shapes parse to beacon
 * targets or libp2p peers that name their peer id; every bad entry is one line saying what shape
 * was expected. Through the CLI: `mesh pool-join --bootstrap BAD` fails in one line and leaves
 * MESH_HOME as it was.
 */
import { describe, expect, it } from 'vitest'
import fs from 'node:fs'
import path from 'node:path'
import { readAgentFile, resolveAgentConfig } from '../../../src/agent/config.js'
import { parseBootstrapEntry } from '../../../src/agent/net/bootstrap.js'
import { UsageError } from '../../../src/errors.js'
import { createPool, initDevice } from '../../../src/pool/index.js'
import { inProcess, meshFails } from '../../helpers/mesh-cli.js'
import { fixedDevice, tempDirs } from '../../helpers/pool-fixtures.js'

const ID = fixedDevice(3).nodeId
const RELAY = fixedDevice(4).nodeId
const tmp = tempDirs('mesh-bootstrap-')

describe('bootstrap entries', () => {
  it.each([
    ['192.168.1.20', { kind: 'beacon', host: '192.168.1.20', port: 42424 }],
    ['mesh-box.lan:99', { kind: 'beacon', host: 'mesh-box.lan', port: 99 }],
    [`${ID}@203.0.113.7:4002`, { kind: 'peer', addr: `/ip4/203.0.113.7/tcp/4002/p2p/${ID}`, peerId: ID }],
    [`${ID}@admin.example.org:4002`, { kind: 'peer', addr: `/dns4/admin.example.org/tcp/4002/p2p/${ID}`, peerId: ID }],
    [`/ip4/11.0.0.2/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${ID}`, { kind: 'peer', addr: `/ip4/11.0.0.2/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${ID}`, peerId: ID }],
    [` /ip4/10.0.0.1/tcp/5/p2p/${ID} `, { kind: 'peer', addr: `/ip4/10.0.0.1/tcp/5/p2p/${ID}`, peerId: ID }]
  ])('%s', (text, want) => {
    expect(parseBootstrapEntry(text, 42424)).toEqual(want)
  })

  it.each([
    ['300.1.1.1', /is not HOST\[:PORT\]/],
    ['host:0', /is not HOST\[:PORT\]/],
    ['nope@1.2.3.4:4001', /"nope" is not a peer id/],
    [`${ID}@1.2.3.4`, /is not PEER_ID@HOST:PORT/],
    [`${ID}@1.2.3.4:70000`, /is not PEER_ID@HOST:PORT/],
    [`${ID}@bad_host:1`, /is not PEER_ID@HOST:PORT/],
    ['/ip4/1.2.3.4/tcp/4001', /lacks the peer's \/p2p\/ID/],
    ['/ip4/1.2.3.4/tcp/x', /is not a multiaddr/],
    [`/ip4/1.2.3.4/tcp/4001/p2p-circuit/p2p/${ID}`, /relayed but names no relay/]
  ])('refuses %s in one line', (text, message) => {
    let err: unknown
    try { parseBootstrapEntry(text, 42424) } catch (e) { err = e }
    expect(err).toBeInstanceOf(UsageError)
    expect((err as Error).message).toMatch(message)
    expect((err as Error).message).not.toMatch(/\n/)
  })

  it('layers add up: beacon targets go to the beacons, peers to the ring, duplicates once', () => {
    const c = resolveAgentConfig('/tmp/h', { bootstrap: ['10.0.0.5', `${ID}@203.0.113.7:4002`] }, { bootstrap: [`/ip4/203.0.113.7/tcp/4002/p2p/${ID}`, '10.0.0.5:42424'] })
    expect(c.beacon.bootstrap).toEqual([{ host: '10.0.0.5', port: 42424 }])
    expect(c.ring.bootstrapPeers).toEqual([`/ip4/203.0.113.7/tcp/4002/p2p/${ID}`])
  })

  it('mesh pool-join --bootstrap records the peer in agent.json beside the settings there; a corrupt agent.json is named and nothing is recorded', async () => {
    const adminHome = tmp()
    initDevice(adminHome, { networkId: 'lan', name: 'admin' })
    const created = createPool(adminHome, { name: 'p', policy: 'token', now: Date.now() })
    const home = tmp()
    initDevice(home, { networkId: 'lan', name: 'member' })
    fs.writeFileSync(path.join(home, 'agent.json'), JSON.stringify({ threads: 2 }))
    const peer = `/ip4/11.0.0.2/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${ID}`
    const args = ['pool-join', '--pool-id', created.record.poolId, '--pool-root-pubkey', created.rootPublicKey, '--name', 'p', '--token', created.joinToken]
    const ok = await inProcess(home, [...args, '--bootstrap', peer])
    expect(ok.code, ok.stderr).toBe(0)
    expect(JSON.parse(fs.readFileSync(path.join(home, 'agent.json'), 'utf8'))).toEqual({ threads: 2, bootstrap: [peer] })
    expect(readAgentFile(home).bootstrap).toEqual([peer])

    const other = tmp()
    initDevice(other, { networkId: 'lan', name: 'member2' })
    fs.writeFileSync(path.join(other, 'agent.json'), '{"threads": ')
    await meshFails(inProcess, other, [...args, '--bootstrap', peer], /agent\.json/)
  })

  it('mesh pool-join --bootstrap with a bad address: one line, exit non-zero, MESH_HOME untouched', async () => {
    const home = tmp()
    initDevice(home, { networkId: 'lan', name: 'member' })
    const args = ['pool-join', '--pool-id', '0'.repeat(64), '--pool-root-pubkey', '1'.repeat(64), '--name', 'p']
    await meshFails(inProcess, home, [...args, '--bootstrap', `${ID}@1.2.3.4`], /bootstrap peer .* is not PEER_ID@HOST:PORT/)
    await meshFails(inProcess, home, [...args, '--bootstrap', '/ip4/1.2.3.4/tcp/4001'], /lacks the peer's \/p2p\/ID/)
  })
})
