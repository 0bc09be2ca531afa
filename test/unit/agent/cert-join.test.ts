import { describe, expect, it } from 'vitest'
import type { AcceptedBeacon } from '../../../src/agent/beacon/service.js'
import type { BeaconBody } from '../../../src/agent/beacon/wire.js'
import { lanDefaults } from '../../../src/agent/config.js'
import { CertJoin } from '../../../src/agent/join.js'
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
