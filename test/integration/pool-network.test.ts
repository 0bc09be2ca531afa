import fs from 'node:fs'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { PoolNetwork } from '../../src/agent/net/pool-network.js'
import { libp2pPrivateKey, listPoolRecords, loadDevice, revokeNode } from '../../src/pool/index.js'
import { encodeHeartbeat } from '../../src/ring/heartbeat.js'
import { readTopology, topologyContent, topologyPath } from '../../src/ring/topology.js'
import { loopbackPoolNetwork } from '../helpers/pool-network.js'
import { tempRoot, testDevice, testPool, type TestDevice } from '../helpers/pools.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

function root (): string {
  const dir = tempRoot()
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function startNet (dev: TestDevice): Promise<PoolNetwork> {
  const net = await loopbackPoolNetwork(dev, { admissionTimeoutMs: 1500, model: 'stories260K' })
  cleanups.push(async () => { await net.stop() })
  return net
}

const ringOf = (net: PoolNetwork, poolId: string): string[] =>
  net.ringStatus(poolId)?.topology.members.map((m) => m.nodeId) ?? []

describe('pool network on 127.0.0.1', () => {
  it('three members converge to the identical topology file; a graceful stop drops one at once', async () => {
    const pool = testPool(root(), ['admin', 'm1', 'm2'])
    const devs = [pool.admin, ...pool.members]
    const nets = await Promise.all(devs.map(startNet))
    const [a, b, c] = nets as [PoolNetwork, PoolNetwork, PoolNetwork]
    await b.dial(a.listenAddresses()[0]!)
    await c.dial(a.listenAddresses()[0]!)
    await vi.waitFor(() => {
      for (const n of nets) {
        expect(ringOf(n, pool.poolId)).toHaveLength(3)
        expect(n.ringStatus(pool.poolId)?.converged).toBe(true)
      }
      const files = devs.map((d) => readTopology(d.home, pool.poolId))
      expect(new Set(files.map((f) => topologyContent(f!))).size).toBe(1)
    }, { timeout: 30_000, interval: 100 })
    const t = readTopology(pool.admin.home, pool.poolId)!
    expect(t.members.map((m) => m.end - m.start)).toEqual([2731, 2731, 2730])
    expect(t.members.map((m) => m.name).sort()).toEqual(['admin', 'm1', 'm2'])

    // a hand-edited topology file is rewritten from the live view
    const file = topologyPath(pool.admin.home, pool.poolId)
    const live = fs.readFileSync(file, 'utf8')
    fs.writeFileSync(file, live.replace('"epoch"', '"epoch_"'))
    await vi.waitFor(() => { expect(fs.readFileSync(file, 'utf8')).toBe(live) }, { timeout: 15_000, interval: 50 })

    // graceful stop: the others drop it on its goodbye
    await c.stop()
    await vi.waitFor(() => {
      expect(ringOf(a, pool.poolId)).toHaveLength(2)
      expect(ringOf(b, pool.poolId)).toHaveLength(2)
    }, { timeout: 15_000, interval: 20 })
    // dropped for its goodbye, not by the timers (timing is no proof on a busy machine)
    expect(a.ringOf(pool.poolId)?.membership.members().find((m) => m.nodeId === pool.members[1]!.nodeId)).toMatchObject({ state: 'offline', offlineCause: 'left' })
  }, 90_000)

  it('refuses a node without a certificate, and one certified by another pool', async () => {
    const dir = root()
    const pool = testPool(dir, ['admin'])
    const a = await startNet(pool.admin)
    // a valid libp2p key, no certificate: connects, shows no certificate, gossips a well-formed
    // heartbeat signed by its own key on the pool topic; its gossip is rejected and it is disconnected
    const bareDevice = loadDevice(testDevice(dir, 'bare').home)
    const bare = await createLibp2p({
      privateKey: libp2pPrivateKey(bareDevice),
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()],
      services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }) }
    })
    cleanups.push(async () => { await bare.stop() })
    const topic = `/mesh/pool/${pool.poolId}/ring/1`
    bare.services.pubsub.subscribe(topic)
    await bare.dial(multiaddr(a.listenAddresses()[0]!))
    const forged = await encodeHeartbeat({
      poolId: pool.poolId, publicKey: bareDevice.publicKey, incarnation: 1, seq: 1, sentAtMs: Date.now(), status: 'alive',
      epoch: 99, ringHash: '', capacity: { cores: 64, memoryMiB: 1, matmulMflops: 0 }, residentMiB: 0, model: '', addresses: []
    }, libp2pPrivateKey(bareDevice))
    await vi.waitFor(async () => {
      if (bare.getConnections().length > 0) await bare.services.pubsub.publish(topic, forged)
      expect(bare.getConnections()).toHaveLength(0)
    }, { timeout: 15_000, interval: 100 })
    expect(a.drops.get('not-admitted')).toBe(1)
    expect(a.drops.get('gossip-from-non-member')).toBeGreaterThanOrEqual(1)
    expect(ringOf(a, pool.poolId)).toEqual([pool.admin.nodeId])

    // a member of another pool: both sides see no shared pool and hang up
    const other = testPool(dir, ['stranger'])
    const s = await startNet(other.admin)
    await s.dial(a.listenAddresses()[0]!)
    await vi.waitFor(() => { expect(a.drops.get('no-shared-pool')).toBeGreaterThanOrEqual(1) }, { timeout: 15_000, interval: 50 })
    await vi.waitFor(() => { expect(ringOf(s, other.poolId)).toEqual([other.admin.nodeId]) })
    expect(ringOf(a, pool.poolId)).toEqual([pool.admin.nodeId])
  }, 90_000)

  it('a revoked member is disconnected and leaves every ring', async () => {
    const pool = testPool(root(), ['admin', 'm1', 'm2'])
    const nets = await Promise.all([pool.admin, ...pool.members].map(startNet))
    const [a, b, c] = nets as [PoolNetwork, PoolNetwork, PoolNetwork]
    await b.dial(a.listenAddresses()[0]!)
    await c.dial(b.listenAddresses()[0]!)
    await vi.waitFor(() => { for (const n of nets) expect(ringOf(n, pool.poolId)).toHaveLength(3) }, { timeout: 30_000, interval: 100 })
    const victim = pool.members[1]!
    revokeNode(pool.admin.home, victim.nodeId, pool.poolId, Date.now())
    await vi.waitFor(() => {
      expect(ringOf(a, pool.poolId)).not.toContain(victim.nodeId)
      expect(ringOf(b, pool.poolId)).not.toContain(victim.nodeId)
      expect(a.isAdmitted(victim.nodeId, pool.poolId)).toBe(false)
      expect(b.isAdmitted(victim.nodeId, pool.poolId)).toBe(false)
    }, { timeout: 30_000, interval: 100 })
    // the list reached b by gossip and is stored in its pool record
    expect(readTopology(pool.members[0]!.home, pool.poolId)?.members).toHaveLength(2)
    // refused with the list that revokes it, the revoked member stores it and leaves the pool's ring:
    // no ring, no ring file, no pool protocols
    await vi.waitFor(() => {
      expect(c.poolIds()).toEqual([])
      expect(fs.existsSync(topologyPath(victim.home, pool.poolId))).toBe(false)
    }, { timeout: 30_000, interval: 100 })
    expect(listPoolRecords(victim.home)[0]?.revocation).not.toBeNull()
  }, 90_000)
})
