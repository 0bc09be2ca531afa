import fs from 'node:fs'
import { lpStream } from '@libp2p/utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { decodeAnswer, encodeQuery, FRESH_PROTOCOL, type Observation } from '../../src/agent/net/freshness.js'
import type { PoolNetwork } from '../../src/agent/net/pool-network.js'
import { topologyPath } from '../../src/ring/topology.js'
import { loopbackPoolNetwork } from '../helpers/pool-network.js'
import { tempRoot, testPool, type TestDevice } from '../helpers/pools.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

async function startNet (dev: TestDevice): Promise<PoolNetwork> {
  const net = await loopbackPoolNetwork(dev, { admissionTimeoutMs: 1500 })
  cleanups.push(async () => { await net.stop() })
  return net
}

/** One raw exchange on /mesh/fresh from `asker` to `to`: the frame we send, the answer's observations (or the error). */
async function exchange (asker: PoolNetwork, to: string, frame: Uint8Array): Promise<Observation[] | Error> {
  const stream = await asker.openMemberStream(to, FRESH_PROTOCOL, AbortSignal.timeout(5000))
  try {
    const lp = lpStream(stream, { maxDataLength: 1 << 16 })
    await lp.write(frame)
    return decodeAnswer((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray())
  } catch (err) {
    return err as Error
  }
}

describe('/mesh/fresh/1.0.0 between real libp2p nodes on 127.0.0.1', () => {
  it('answers who heard a member how long ago, where it listens and over which path; refuses hostile queries by reason', async () => {
    const dir = tempRoot()
    cleanups.push(() => { fs.rmSync(dir, { recursive: true, force: true }) })
    const pool = testPool(dir, ['admin', 'm1', 'm2'])
    const [admin, m1, m2] = await Promise.all([pool.admin, ...pool.members].map(startNet)) as [PoolNetwork, PoolNetwork, PoolNetwork]
    await m1.dial(admin.listenAddresses()[0]!)
    await m2.dial(admin.listenAddresses()[0]!)
    await vi.waitFor(() => {
      for (const n of [admin, m1, m2]) expect(n.ringStatus(pool.poolId)?.topology.members).toHaveLength(3)
    }, { timeout: 30_000, interval: 50 })
    const m2Id = pool.members[1]!.nodeId

    // what admin knows of m2: heard within a few heartbeats, directly on the LAN, at the address m2 announces
    await vi.waitFor(async () => {
      const answer = await exchange(m1, pool.admin.nodeId, encodeQuery({ poolId: pool.poolId, nodeId: m2Id }))
      if (answer instanceof Error) throw answer
      expect(answer).toHaveLength(1)
      expect(answer[0]!.ageMs).toBeLessThan(5000)
      expect(answer[0]!.path).toBe('direct-lan')
      expect(answer[0]!.endpoint).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/)
      expect(answer[0]!.addresses).toEqual(m2.listenAddresses())
    }, { timeout: 10_000, interval: 100 })
    const served = admin.freshnessStats().served

    // about a node outside the pool (here: the pool's root is no member): an empty answer, nothing leaks
    expect(await exchange(m1, pool.admin.nodeId, encodeQuery({ poolId: pool.poolId, nodeId: '12D3KooWGzTYPjS2YvGQ9qVnZ8rbVXgBmoYcRPEiqU3Z8E8nGaQb' }))).toEqual([])
    // about a pool the asker is not admitted to: empty too, and counted
    expect(await exchange(m1, pool.admin.nodeId, encodeQuery({ poolId: 'b'.repeat(64), nodeId: m2Id }))).toEqual([])
    expect(admin.freshnessStats().drops['not-member']).toBe(1)

    // hostile frames: too big for the bound (never read past it), not JSON, JSON of the wrong shape
    expect(await exchange(m1, pool.admin.nodeId, new Uint8Array(300).fill(0x7b))).toBeInstanceOf(Error)
    expect(await exchange(m1, pool.admin.nodeId, Buffer.from('{"poolId":'))).toBeInstanceOf(Error)
    expect(await exchange(m1, pool.admin.nodeId, Buffer.from(JSON.stringify({ poolId: pool.poolId, nodeId: m2Id, extra: 1 })))).toBeInstanceOf(Error)
    await vi.waitFor(() => {
      expect(admin.freshnessStats().drops).toMatchObject({ oversized: 1, malformed: 2, 'not-member': 1 })
    }, { timeout: 5000, interval: 20 })
    expect(admin.freshnessStats().served).toBe(served + 2)

    // still answering after all that
    const again = await exchange(m1, pool.admin.nodeId, encodeQuery({ poolId: pool.poolId, nodeId: m2Id }))
    expect(Array.isArray(again) && again.length === 1).toBe(true)
  }, 90_000)

  it('a member back on another port is in every ring again and reached directly, without anyone restarting', async () => {
    const dir = tempRoot()
    cleanups.push(() => { fs.rmSync(dir, { recursive: true, force: true }) })
    const pool = testPool(dir, ['admin', 'm1', 'm2'])
    const admin = await startNet(pool.admin)
    const m1 = await startNet(pool.members[0]!)
    let m2 = await startNet(pool.members[1]!)
    await m1.dial(admin.listenAddresses()[0]!)
    await m2.dial(admin.listenAddresses()[0]!)
    await vi.waitFor(() => {
      for (const n of [admin, m1, m2]) expect(n.ringStatus(pool.poolId)?.topology.members).toHaveLength(3)
      expect(m1.memberPaths()[pool.members[1]!.nodeId]).toBe('direct-lan')
    }, { timeout: 30_000, interval: 50 })
    const oldAddr = m2.listenAddresses()[0]!

    // m2 goes away and comes back on another port knowing only the admin (its ring file gone): m1's
    // address for it fails, and m1 must learn the new one from the pool (heartbeats or a freshness query)
    await m2.stop()
    fs.rmSync(topologyPath(pool.members[1]!.home, pool.poolId), { force: true })
    m2 = await loopbackPoolNetwork(pool.members[1]!, { admissionTimeoutMs: 1500 })
    cleanups.push(async () => { await m2.stop() })
    expect(m2.listenAddresses()[0]).not.toBe(oldAddr)
    const t0 = performance.now()
    await m2.dial(admin.listenAddresses()[0]!)
    await vi.waitFor(() => {
      expect(m1.memberPaths()[pool.members[1]!.nodeId]).toBe('direct-lan')
      for (const n of [admin, m1, m2]) expect(n.ringStatus(pool.poolId)?.topology.members).toHaveLength(3)
    }, { timeout: 30_000, interval: 50 })
    const f = m1.freshnessStats()
    console.log(`freshness: m1 reached m2 on its new port ${Math.round(performance.now() - t0)} ms after m2 came back (m1 asked ${f.queries} times, ${f.answers} answers, ${f.found} with an address)`)
    // m1 asked when its connection went, and the admin answered
    expect(f.queries).toBeGreaterThan(0)
    expect(f.answers).toBeGreaterThan(0)
  }, 90_000)
})
