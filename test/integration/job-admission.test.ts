import fs from 'node:fs'
import path from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { libp2pChannel } from '../../src/agent/inference/job-channel.js'
import type { InferenceEvent } from '../../src/agent/inference/events.js'
import { JobService } from '../../src/agent/inference/jobs.js'
import { ModelHost } from '../../src/agent/inference/models.js'
import { TensorLinks } from '../../src/agent/inference/tensor-links.js'
import type { PoolNetwork } from '../../src/agent/net/pool-network.js'
import { BUNDLED_MODEL, identifyModel, type ServedModel } from '../../src/inference/served.js'
import { parseShape, writeSyntheticCheckpoint } from '../../src/inference/synth.js'
import { JOB_PROTOCOL, type JobOpen } from '../../src/inference/job/messages.js'
import { evenRanges } from '../../src/inference/job/plan.js'
import { loopbackPoolNetwork } from '../helpers/pool-network.js'
import { certify, tempRoot, testPool, type TestDevice } from '../helpers/pools.js'

const silent = pino({ level: 'silent' })
const golden = JSON.parse(fs.readFileSync('test/fixtures/golden/stories260K-greedy.json', 'utf8')) as { generations: Array<{ prompt: string, steps: number, prompt_token_ids: number[], token_ids: number[] }> }
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

async function startNet (dev: TestDevice, model = ''): Promise<PoolNetwork> {
  const net = await loopbackPoolNetwork(dev, { model })
  cleanups.push(async () => { await net.stop() })
  return net
}

/** A real agent's job side (pool network announcing its model, tensor links, job service) without the rest of the agent. */
async function jobAgent (dev: TestDevice, served?: ServedModel, log = silent): Promise<{ net: PoolNetwork, jobs: JobService }> {
  const model = served ?? await identifyModel(BUNDLED_MODEL)
  const net = await startNet(dev, model.identity.id)
  const links = new TensorLinks({ net, selfId: dev.nodeId, log }, { host: '127.0.0.1' })
  const jobs = new JobService({ net, links, models: new ModelHost(() => model, 1), selfId: dev.nodeId, log })
  await links.start()
  await jobs.start()
  cleanups.push(async () => { await jobs.stop(); await links.stop() })
  return { net, jobs }
}

/** A logger whose lines the test can read. */
function capturedLog (): { log: pino.Logger, lines: string[] } {
  const lines: string[] = []
  const sink = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(chunk.toString('utf8')); done() } })
  return { log: pino({ level: 'info' }, sink), lines }
}

const openFor = (poolId: string, leader: string, members: string[]): JobOpen =>
  ({ type: 'open', job: 1, poolId, epoch: 1_000_000, leader, modelId: 'f'.repeat(64), positions: 8, batch: 1, members: evenRanges(members) })

describe('who may take part in a job (libp2p on 127.0.0.1)', () => {
  it('a device without a certificate for a shared pool cannot open a job stream', async () => {
    const dir = tempRoot(); cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
    const p = testPool(dir, ['admin'])
    const stranger = testPool(dir, ['stranger']).admin
    const { net: a } = await jobAgent(p.admin)
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
    const { net: a } = await jobAgent(p.admin)
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

  it('a ring member whose heartbeats announce another model is left out of the job up front: never opened, the others give the golden ids', async () => {
    const dir = tempRoot(); cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
    const p = testPool(dir, ['admin', 'same', 'other'])
    const [same, other] = p.members as [TestDevice, TestDevice]
    const otherFile = path.join(dir, 'other.bin')
    await writeSyntheticCheckpoint(otherFile, parseShape('dim=32,hidden=64,layers=2,heads=4,kv_heads=2,vocab=512,seq_len=64'), 0, 3n)
    const otherModel = await identifyModel({ ...BUNDLED_MODEL, checkpointPath: otherFile })
    const otherLog = capturedLog()
    const nodes = [await jobAgent(p.admin), await jobAgent(same), await jobAgent(other, otherModel, otherLog.log)]
    for (const [i, a] of nodes.entries()) for (const b of nodes.slice(i + 1)) await a.net.dial(b.net.listenAddresses()[0]!)
    const leader = nodes[0]!
    await vi.waitFor(() => {
      const s = leader.net.ringStatus(p.poolId)
      expect(s?.converged).toBe(true)
      expect(s?.topology.members).toHaveLength(3)
      expect(leader.net.modelOf(p.poolId, other.nodeId)).toBe(otherModel.identity.id)
      expect(leader.net.modelOf(p.poolId, same.nodeId)).toBeDefined()
    }, { timeout: 20_000, interval: 50 })

    const g = golden.generations.find((x) => x.prompt === 'Once upon a time' && x.steps === 64)!
    const events: InferenceEvent[] = []
    await leader.jobs.run({ prompt: g.prompt, maxTokens: g.steps - g.prompt_token_ids.length + 1, temperature: 0, topP: 0.9, seed: '1' }, (e) => { events.push(e) })
    const done = events.find((e) => e.type === 'done')
    expect(done, JSON.stringify(events.filter((e) => e.type !== 'token'))).toBeDefined()
    if (done?.type !== 'done') return
    expect(done.result.token_ids).toEqual(g.token_ids)
    expect(done.result.members.map((m) => m.node_id).sort()).toEqual([p.admin.nodeId, same.nodeId].sort())
    expect(events.filter((e) => e.type === 'notice')).toEqual([{
      type: 'notice',
      message: expect.stringMatching(new RegExp(`^member \\S+ left out of this job: it serves another model \\(${otherModel.identity.id.slice(0, 12)}\\)$`))
    }])
    // it never saw the job: nothing refused, nothing served
    expect(otherLog.lines.filter((l) => /job/.test(l))).toEqual([])
  }, 60_000)
})
