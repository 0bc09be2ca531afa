import fs from 'node:fs'
import pino from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { TensorLinks } from '../../src/agent/inference/tensor-links.js'
import type { PoolNetwork } from '../../src/agent/net/pool-network.js'
import { loopbackPoolNetwork } from '../helpers/pool-network.js'
import { allReduces } from '../helpers/tensor-planes.js'
import { tempRoot, testPool, type TestDevice } from '../helpers/pools.js'

const silent = pino({ level: 'silent' })
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

/** A pool network on 127.0.0.1 and its tensor links, the plane listening on `planeHost`. */
async function member (dev: TestDevice, planeHost: string): Promise<{ net: PoolNetwork, links: TensorLinks }> {
  const net = await loopbackPoolNetwork(dev)
  const links = new TensorLinks({ net, selfId: dev.nodeId, log: silent }, { host: planeHost, directTimeoutMs: 1000 })
  await links.start()
  cleanups.push(async () => { await links.stop(); await net.stop() })
  return { net, links }
}

async function linkedPair (hostOfLarger: string): Promise<[TensorLinks, TensorLinks]> {
  const dir = tempRoot(); cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  const p = testPool(dir, ['admin', 'member'])
  // the smaller node id dials; the other's plane listens where the dialer may or may not reach it
  const [small, large] = [p.admin, p.members[0]!].sort((x, y) => x.nodeId < y.nodeId ? -1 : 1)
  const s = await member(small!, '127.0.0.1')
  const l = await member(large!, hostOfLarger)
  await s.net.dial(l.net.listenAddresses()[0]!)
  await vi.waitFor(() => { expect(s.net.isAdmitted(large!.nodeId, p.poolId) && l.net.isAdmitted(small!.nodeId, p.poolId)).toBe(true) }, { timeout: 10_000, interval: 50 })
  await Promise.all([s.links.link(p.poolId, [large!.nodeId]), l.links.link(p.poolId, [small!.nodeId])])
  return [s.links, l.links]
}

describe('tensor-plane links between agents (libp2p on 127.0.0.1)', () => {
  it('use a direct TCP link when the peer\'s plane is reachable', async () => {
    const [a, b] = await linkedPair('127.0.0.1')
    expect(Object.values(a.plane.linkTransports())).toEqual(['tcp'])
    expect(Object.values(b.plane.linkTransports())).toEqual(['tcp'])
  })

  it('carry the same frames over a libp2p stream when the TCP link cannot connect, and the all-reduce works', async () => {
    // the larger id's plane listens on 127.0.0.2: the dialer's TCP connect to 127.0.0.1 is refused
    const [a, b] = await linkedPair('127.0.0.2')
    expect(Object.values(a.plane.linkTransports())).toEqual(['stream'])
    expect(Object.values(b.plane.linkTransports())).toEqual(['stream'])
    const [ra, rb] = allReduces([a.plane, b.plane], 5, 2)
    for (let step = 0; step < 8; step++) {
      const x = Float32Array.from({ length: 64 }, (_, i) => i + step)
      const y = Float32Array.from({ length: 64 }, (_, i) => 1000 * i - step)
      const sum = x.map((v, i) => v + y[i]!)
      await Promise.all([ra!.allReduce(x), rb!.allReduce(y)])
      expect([...x]).toEqual([...sum])
      expect([...y]).toEqual([...sum])
    }
    expect([...a.plane.drops.entries(), ...b.plane.drops.entries()]).toEqual([])
  })
})
