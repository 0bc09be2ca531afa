import type { Stream } from '@libp2p/interface'
import { streamPair } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import type { AcceptedBeacon } from '../../../src/agent/beacon/service.js'
import type { BeaconBody } from '../../../src/agent/beacon/wire.js'
import { lanDefaults } from '../../../src/agent/config.js'
import { CertJoin } from '../../../src/agent/join.js'
import { CertRequestServer, decodeJoinAnswer, encodeJoinAnswer, MAX_JOIN_ANSWER_BYTES, requestCertificate, type JoinAnswer } from '../../../src/agent/net/cert-request.js'
import type { Logger } from '../../../src/agent/log.js'
import { PoolDirectory } from '../../../src/agent/pools.js'
import { approvePending, createCertRequest, createPool, initDevice, type CertRequest, type PoolPolicy } from '../../../src/pool/index.js'
import { fixedDevice, tempDirs } from '../../helpers/pool-fixtures.js'

const tmp = tempDirs('mesh-join-')
const silent = { info: () => {}, warn: () => {}, debug: () => {}, error: () => {} } as unknown as Logger
const from = { address: '10.0.0.9', port: 40000 }

// CertJoin is under test; the beacon service is replaced by a recorder of what it would send
function admin (policy: PoolPolicy): { join: CertJoin, sent: BeaconBody[], drops: string[], clock: { now: number }, poolId: string, token: string, home: string, pools: PoolDirectory } {
  const home = tmp(); initDevice(home, { networkId: 'lan', name: 'admin' })
  const created = createPool(home, { name: 'p', policy, now: Date.now() })
  const pools = new PoolDirectory(home, () => {}); pools.refresh()
  const sent: BeaconBody[] = []; const drops: string[] = []
  const clock = { now: Date.now() }
  const join = new CertJoin(lanDefaults(home).join, {
    home, pools, clock: () => clock.now, random: () => 0.5, log: silent, onCertInstalled: () => {},
    beacons: { send: (_pool, body) => { sent.push(body) }, countDrop: (r) => { drops.push(r) } }
  })
  return { join, sent, drops, clock, poolId: created.record.poolId, token: created.joinToken, home, pools }
}
const requestBeacon = (poolId: string, request: CertRequest): AcceptedBeacon =>
  ({ type: 'cert-request', poolId, sender: Buffer.from(request.devicePublicKey).toString('hex'), request, beacon: {} as never }) as AcceptedBeacon
const member = fixedDevice(21, 'member')

describe('admin side of the certificate join', () => {
  it('signs a request with the token once, answers repeats from its cache, rate-limits each sender', () => {
    const a = admin('token')
    const req = createCertRequest(member, a.poolId, a.clock.now, a.token)
    a.join.onBeacon(requestBeacon(a.poolId, req), from)
    expect(a.sent.map((b) => b.type)).toEqual(['cert-response'])
    a.clock.now += 100
    a.join.onBeacon(requestBeacon(a.poolId, req), from)
    expect(a.drops).toEqual(['rate-limited'])
    a.clock.now += 1000
    a.join.onBeacon(requestBeacon(a.poolId, createCertRequest(member, a.poolId, a.clock.now, a.token)), from)
    const [first, second] = a.sent as Array<BeaconBody & { type: 'cert-response' }>
    expect(Buffer.from(second?.cert ?? []).equals(first?.cert ?? new Uint8Array())).toBe(true) // not re-signed
    expect(a.join.snapshot()).toMatchObject({ issued: 1, answeredFromCache: 1, refused: {} })
  })

  it('refuses a wrong token and sends nothing', () => {
    const a = admin('token')
    a.join.onBeacon(requestBeacon(a.poolId, createCertRequest(member, a.poolId, a.clock.now, 'A'.repeat(43))), from)
    expect(a.sent).toEqual([])
    expect(a.join.snapshot().refused).toEqual({ 'bad-token': 1 })
  })

  it('holds a request under the manual policy and sends the certificate once pool-approve signed it', () => {
    const a = admin('manual')
    a.join.onBeacon(requestBeacon(a.poolId, createCertRequest(member, a.poolId, a.clock.now)), from)
    expect(a.sent).toEqual([])
    expect(a.join.snapshot().pending).toBe(1)
    a.join.poolsChanged()
    expect(a.sent).toEqual([])
    approvePending(a.home, member.nodeId, a.poolId, a.clock.now) // what `mesh pool-approve` does
    a.pools.refresh(); a.join.poolsChanged()
    expect(a.sent.map((b) => b.type)).toEqual(['cert-response'])
    expect(a.join.snapshot()).toMatchObject({ issued: 1, pending: 0 })
  })
})

describe('certificate requests over libp2p (/mesh/cert-request/1.0.0)', () => {
  // the real server and client over an in-memory stream pair; the admin decides with the real CertJoin
  async function exchange (server: CertRequestServer, write: (s: Stream) => Promise<JoinAnswer | undefined>, remotePeer: string): Promise<JoinAnswer | undefined> {
    const [outbound, inbound] = await streamPair()
    const served = server.handle(inbound, remotePeer)
    const answer = await write(outbound).catch(() => undefined)
    await served
    return answer
  }

  it('signs a request under the token policy as for a beacon, and answers a repeat from the same certificate', async () => {
    const a = admin('token')
    const server = new CertRequestServer((poolId, req) => a.join.decide(poolId, req))
    const req = createCertRequest(member, a.poolId, a.clock.now, a.token)
    const first = await exchange(server, async (s) => await requestCertificate(s, req.bytes), member.nodeId)
    expect(first?.kind).toBe('certificate')
    a.clock.now += 1000
    const again = await exchange(server, async (s) => await requestCertificate(s, createCertRequest(member, a.poolId, a.clock.now, a.token).bytes), member.nodeId)
    expect(again).toEqual(first)
    expect(a.join.snapshot()).toMatchObject({ issued: 1, answeredFromCache: 1 })
    expect(a.sent).toEqual([]) // nothing went out by beacon
  })

  it('answers pending under the manual policy, refused for a wrong token', async () => {
    const m = admin('manual')
    const server = new CertRequestServer((poolId, req) => m.join.decide(poolId, req))
    expect(await exchange(server, async (s) => await requestCertificate(s, createCertRequest(member, m.poolId, m.clock.now).bytes), member.nodeId)).toEqual({ kind: 'pending' })
    const t = admin('token')
    const tokenServer = new CertRequestServer((poolId, req) => t.join.decide(poolId, req))
    expect(await exchange(tokenServer, async (s) => await requestCertificate(s, createCertRequest(member, t.poolId, t.clock.now, 'A'.repeat(43)).bytes), member.nodeId))
      .toEqual({ kind: 'refused', reason: 'bad-token' })
  })

  it('drops and counts hostile requests: another node\'s request, garbage, an oversized frame', async () => {
    const a = admin('open')
    const server = new CertRequestServer((poolId, req) => a.join.decide(poolId, req))
    const req = createCertRequest(member, a.poolId, a.clock.now)
    expect(await exchange(server, async (s) => await requestCertificate(s, req.bytes), fixedDevice(22).nodeId)).toBeUndefined()
    expect(await exchange(server, async (s) => await requestCertificate(s, new Uint8Array(40).fill(9)), member.nodeId)).toBeUndefined()
    expect(await exchange(server, async (s) => await requestCertificate(s, new Uint8Array(64 * 1024)), member.nodeId)).toBeUndefined()
    expect(Object.fromEntries(server.drops)).toEqual({ 'wrong-node': 1, malformed: 1, oversized: 1 })
    expect(a.join.snapshot().issued).toBe(0)
  })

  it('answers decode strictly: every kind round-trips, anything else is undefined', () => {
    const answers: JoinAnswer[] = [{ kind: 'certificate', cert: new Uint8Array([1, 2, 3]) }, { kind: 'pending' }, { kind: 'refused', reason: 'bad-token' }, { kind: 'rate-limited' }, { kind: 'undecided', reason: 'not the admin' }]
    for (const x of answers) expect(decodeJoinAnswer(encodeJoinAnswer(x))).toEqual(x)
    for (const bad of [[], [2, 1, 5], [1, 0], [1, 9], [1, 2, 7], [1, 3, 0xff], [1, 1]]) expect(decodeJoinAnswer(Uint8Array.from(bad)), JSON.stringify(bad)).toBeUndefined()
    expect(decodeJoinAnswer(new Uint8Array(MAX_JOIN_ANSWER_BYTES + 1).fill(1))).toBeUndefined()
  })
})
