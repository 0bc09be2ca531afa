import fs from 'node:fs'
import pino from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { libp2pChannel } from '../../src/agent/inference/job-channel.js'
import { JobService } from '../../src/agent/inference/jobs.js'
import { ModelHost } from '../../src/agent/inference/models.js'
import { TensorLinks } from '../../src/agent/inference/tensor-links.js'
import { poolNetwork, type PoolNetwork } from '../../src/agent/net/pool-network.js'
import { RecordPoolTrust } from '../../src/agent/net/pool-trust.js'
import { BUNDLED_MODEL, identifyModel } from '../../src/inference/served.js'
import { JOB_PROTOCOL, type JobOpen } from '../../src/inference/job/messages.js'
import { evenRanges } from '../../src/inference/job/plan.js'
import { libp2pPrivateKey, listPoolRecords, loadDevice } from '../../src/pool/index.js'
import { loopbackTestConfig } from '../../src/ring/liveness-config.js'
import { certify, tempRoot, testPool, type TestDevice } from '../helpers/pools.js'

const silent = pino({ level: 'silent' })
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

async function startNet (dev: TestDevice): Promise<PoolNetwork> {
  const net = poolNetwork({ listen: ['/ip4/127.0.0.1/tcp/0'], liveness: loopbackTestConfig(), admissionTimeoutMs: 3000, redialIntervalMs: 500, trustReloadMs: 200 })({
    home: dev.home,
    privateKey: libp2pPrivateKey(loadDevice(dev.home)),
    trust: new RecordPoolTrust(dev.home, dev.nodeId, () => listPoolRecords(dev.home)),
    capacity: { cores: 1, memoryMiB: 1024, matmulMflops: 0 },
    model: '',
    log: silent
  })
  await net.start()
  cleanups.push(async () => { await net.stop() })
  return net
}

/** A real agent's job side (pool network, tensor links, job service) without the rest of the agent. */
async function jobAgent (dev: TestDevice): Promise<PoolNetwork> {
  const net = await startNet(dev)
  const served = await identifyModel(BUNDLED_MODEL)
  const links = new TensorLinks({ net, selfId: dev.nodeId, log: silent }, { host: '127.0.0.1' })
  const jobs = new JobService({ net, links, models: new ModelHost(() => served), selfId: dev.nodeId, log: silent })
  await links.start()
  await jobs.start()
  cleanups.push(async () => { await jobs.stop(); await links.stop() })
  return net
}

const openFor = (poolId: string, leader: string, members: string[]): JobOpen =>
  ({ type: 'open', job: 1, poolId, epoch: 1_000_000, leader, modelId: 'f'.repeat(64), positions: 8, members: evenRanges(members) })

describe('who may take part in a job (libp2p on 127.0.0.1)', () => {
  it('a device without a certificate for a shared pool cannot open a job stream', async () => {
    const dir = tempRoot(); cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
    const p = testPool(dir, ['admin'])
    const stranger = testPool(dir, ['stranger']).admin
    const a = await jobAgent(p.admin)
    const x = await startNet(stranger)
    await x.dial(a.listenAddresses()[0]!)
    const attempt = x.openMemberStream(p.admin.nodeId, JOB_PROTOCOL, AbortSignal.timeout(3000)).then(async (stream) => {
      const ch = libp2pChannel(stream)
      await ch.send(openFor(p.poolId, stranger.nodeId, [stranger.nodeId, p.admin.nodeId]))
      return await ch.receive(3000)
    })
    // refused by the gate on either side: no job message ever comes back
    expect(await attempt.catch(() => undefined)).toBeUndefined()
  })

  it('a member of another pool this node is in is refused a job in a pool it does not belong to', async () => {
    const dir = tempRoot(); cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
    const p = testPool(dir, ['admin'])
    const q = testPool(dir, ['other'])
    certify(q, p.admin) // admin is in both pools; "other" only in q
    const a = await jobAgent(p.admin)
    const y = await startNet(q.admin)
    await y.dial(a.listenAddresses()[0]!)
    await vi.waitFor(() => {
      expect(a.isAdmitted(q.admin.nodeId, q.poolId)).toBe(true)
      expect(y.isAdmitted(p.admin.nodeId, q.poolId)).toBe(true)
    }, { timeout: 10_000, interval: 50 })
    const stream = await y.openMemberStream(p.admin.nodeId, JOB_PROTOCOL, AbortSignal.timeout(3000))
    const ch = libp2pChannel(stream)
    await ch.send(openFor(p.poolId, q.admin.nodeId, [q.admin.nodeId, p.admin.nodeId]))
    expect(await ch.receive(5000)).toMatchObject({ type: 'refused', reason: 'not-member' })
  })
})
