import { describe, expect, it } from 'vitest'
import { encodeCertBundle } from '../../../src/agent/net/cert-bundle.js'
import { RelayAdmission } from '../../../src/relay/admission.js'
import { makeMember, makePool, type TestPool } from '../../helpers/members.js'

const NOW = Date.now()
const bundle = (...certs: Uint8Array[]): Uint8Array => encodeCertBundle({ certificates: certs, revocations: [] })
const trustOf = (p: TestPool) => ({ poolId: p.poolId, rootPublicKey: p.rootPublicKey })

describe('RelayAdmission', () => {
  const served = makePool()
  const other = makePool()
  const alice = makeMember(served, 'alice')
  const bob = makeMember(served, 'bob')

  it('admits a peer for the served pools its own valid certificates name, and counts every refusal', () => {
    const adm = new RelayAdmission(() => [trustOf(served)])
    expect(adm.present(alice.nodeId, bundle(alice.certBytes), NOW)).toEqual([served.poolId])
    expect(adm.present(bob.nodeId, bundle(alice.certBytes), NOW)).toEqual([]) // someone else's
    expect(adm.present(bob.nodeId, bundle(makeMember(other, 'x').certBytes), NOW)).toEqual([])
    const late = makeMember(served, 'late', { notBefore: NOW - 7_200_000, notAfter: NOW - 1 })
    expect(adm.present(late.nodeId, bundle(late.certBytes), NOW)).toEqual([])
    expect(adm.present(bob.nodeId, Uint8Array.of(9, 9, 9), NOW)).toEqual([])
    expect(Object.fromEntries(adm.drops)).toEqual({ 'wrong-node': 1, 'not-served': 1, 'invalid-certificate': 1, 'bad-bundle': 1 })
  })

  it('relays only between peers admitted in a common pool, and forgets expiry and unserved pools', async () => {
    const pools = [trustOf(served)]
    const adm = new RelayAdmission(() => pools)
    adm.present(alice.nodeId, bundle(alice.certBytes), NOW)
    expect(await adm.mayConnect(alice.nodeId, bob.nodeId, 0, () => NOW)).toBe(false)
    adm.present(bob.nodeId, bundle(bob.certBytes), NOW)
    expect(await adm.mayConnect(alice.nodeId, bob.nodeId, 0, () => NOW)).toBe(true)
    expect(await adm.mayConnect(alice.nodeId, bob.nodeId, 0, () => NOW + 2 * 86_400_000)).toBe(false) // certificates expired
    pools.length = 0 // the relay stopped serving the pool
    expect(adm.poolsOf(alice.nodeId, NOW)).toEqual([])
    expect(adm.drops.get('connect-refused')).toBe(2)
  })

  it('lets a reservation or a connection wait for the certificate that is still on its way', async () => {
    const adm = new RelayAdmission(() => [trustOf(served)])
    const asking = adm.mayReserve(alice.nodeId, 5000)
    adm.present(alice.nodeId, bundle(alice.certBytes), Date.now())
    expect(await asking).toBe(true)
    const connecting = adm.mayConnect(bob.nodeId, alice.nodeId, 5000)
    adm.present(bob.nodeId, bundle(bob.certBytes), Date.now())
    expect(await connecting).toBe(true)
    expect(await adm.mayReserve(makeMember(served, 'carol').nodeId, 0)).toBe(false)
    expect(adm.drops.get('reservation-refused')).toBe(1)
  })
  it('lets a device without any certificate reach a served pool\'s admin (to ask for one), within a rate budget; nobody else', async () => {
    const adm = new RelayAdmission(() => [trustOf(served)])
    const admin = makeMember(served, 'admin', { roles: ['admin', 'member'] })
    adm.present(admin.nodeId, bundle(admin.certBytes), NOW)
    adm.present(bob.nodeId, bundle(bob.certBytes), NOW)
    const stranger = makeMember(other, 'stranger').nodeId // no certificate the relay accepts
    expect(await adm.mayConnect(stranger, bob.nodeId, 0, () => NOW)).toBe(false) // bob is no admin
    expect(await adm.mayConnect(stranger, admin.nodeId, 0, () => NOW)).toBe(true)
    // a burst of 20, then about 2 a second
    const burst = await Promise.all(Array.from({ length: 25 }, async () => await adm.mayConnect(stranger, admin.nodeId, 0, () => NOW)))
    expect(burst.filter((ok) => ok)).toHaveLength(19)
    expect(await adm.mayConnect(stranger, admin.nodeId, 0, () => NOW + 1000)).toBe(true)
    expect(adm.joins).toBe(21)
    expect(Object.fromEntries(adm.drops)).toEqual({ 'connect-refused': 1, 'join-rate-limited': 6 })
  })
})
