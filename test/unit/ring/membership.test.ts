import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { CorruptFileError } from '../../../src/atomic-file.js'
import { decodeHeartbeat, encodeHeartbeat, type DecodedHeartbeat, type HeartbeatStatus } from '../../../src/ring/heartbeat.js'
import { nextIncarnation } from '../../../src/ring/incarnation.js'
import { lanDefaults } from '../../../src/ring/liveness-config.js'
import { RingMembership } from '../../../src/ring/membership.js'
import { readTopology, topologyContent, topologyPath, writeTopology } from '../../../src/ring/topology.js'

const POOL = '602e587a5e549df0335ddddde1d7a73e163116015dfd047d071640f36e74e00a'
const cfg = lanDefaults()
const cap = { cores: 2, memoryMiB: 4096, matmulMflops: 0 }

interface Node { key: PrivateKey, id: string, name: string, m: RingMembership }
async function node (seed: number, now = 0, cores = 2): Promise<Node> {
  const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(seed))
  const id = peerIdFromPrivateKey(key).toString()
  const name = `dev${seed}`
  const m = new RingMembership({
    poolId: POOL, self: { nodeId: id, name }, incarnation: 100 + seed, capacity: { ...cap, cores },
    model: 'stories260K', addresses: [`/ip4/127.0.0.1/tcp/${4000 + seed}`], mode: 'even', config: cfg
  }, now)
  return { key, id, name, m }
}

async function heartbeatOf (from: Node, status: HeartbeatStatus = 'alive', skewMs = 0): Promise<DecodedHeartbeat> {
  const bytes = await encodeHeartbeat({ ...from.m.nextHeartbeat(status, Date.now() + skewMs), publicKey: from.key.publicKey.raw }, from.key)
  const r = decodeHeartbeat(bytes)
  if (!r.ok) throw new Error(r.reason)
  return r.value
}

/** Certify everyone with everyone, then let heartbeats cross until nothing changes. */
async function converge (nodes: Node[], now: number): Promise<void> {
  for (const n of nodes) n.m.setCertified(nodes.map((o) => ({ nodeId: o.id, name: o.name })), now)
  for (let round = 0; round < 4; round++) {
    const beats = await Promise.all(nodes.map((n) => heartbeatOf(n)))
    for (const n of nodes) for (const b of beats) if (b.nodeId !== n.id) n.m.receive(b, now)
  }
}

describe('RingMembership', () => {
  it('alone: a one-member ring owning all 8192 columns, epoch 1', async () => {
    const a = await node(1)
    expect(a.m.ring.slots).toEqual([{ nodeId: a.id, position: 0, start: 0, end: 8192 }])
    expect(a.m.epoch).toBe(1)
    expect(a.m.converged()).toBe(true)
  })

  it('three members converge to identical topologies apart from the timestamp', async () => {
    const nodes = await Promise.all([node(1), node(2), node(3)])
    await converge(nodes, 10)
    const contents = nodes.map((n) => topologyContent(n.m.topology(new Date().toISOString())))
    expect(new Set(contents).size).toBe(1)
    const t = nodes[0]!.m.topology('2026-01-01T00:00:00.000Z')
    expect(t.members.map((x) => x.end - x.start)).toEqual([2731, 2731, 2730])
    expect(t.members.map((x) => x.name).sort()).toEqual(['dev1', 'dev2', 'dev3'])
    expect(nodes.every((n) => n.m.converged())).toBe(true)
  })

  it('drops heartbeats from non-members, other pools, itself and replays, with counted reasons', async () => {
    const [a, b, stranger] = await Promise.all([node(1), node(2), node(9)])
    a.m.setCertified([{ nodeId: b.id, name: b.name }], 0)
    expect(a.m.receive(await heartbeatOf(stranger), 1).dropped).toBe('not-member')
    const own = await heartbeatOf(a)
    a.m.receive(own, 1)
    const fromB = await heartbeatOf(b)
    expect(a.m.receive(fromB, 1)).toEqual({ ringChanged: true })
    expect(a.m.receive(fromB, 2)).toEqual({ dropped: 'replay', ringChanged: false })
    const other = { ...fromB, heartbeat: { ...fromB.heartbeat, poolId: 'f'.repeat(64) } }
    a.m.receive(other, 2)
    expect(Object.fromEntries(a.m.drops)).toEqual({ 'not-member': 1, own: 1, replay: 1, 'wrong-pool': 1 })
    expect(a.m.ring.slots).toHaveLength(2)
  })

  it('a silent member goes suspect (still in the ring), then offline (out), bumping the epoch', async () => {
    const nodes = await Promise.all([node(1), node(2)])
    await converge(nodes, 0)
    const a = nodes[0]!
    const epoch = a.m.epoch
    expect(a.m.tick(cfg.suspectAfterMs)).toBe(false)
    expect(a.m.suspects()).toEqual([nodes[1]!.id])
    expect(a.m.topology('x').members.find((x) => x.nodeId === nodes[1]!.id)?.status).toBe('suspect')
    expect(a.m.tick(cfg.offlineAfterMs)).toBe(true)
    expect(a.m.ring.slots.map((s) => s.nodeId)).toEqual([a.id])
    expect(a.m.epoch).toBe(epoch + 1)
    expect(a.m.members()).toMatchObject([{ nodeId: nodes[1]!.id, state: 'offline', offlineCause: 'timeout', inRing: false }])
  })

  it('a ping reply keeps a suspect in; a goodbye drops it at once', async () => {
    const nodes = await Promise.all([node(1), node(2)])
    await converge(nodes, 0)
    const [a, b] = nodes as [Node, Node]
    a.m.tick(cfg.suspectAfterMs)
    a.m.pingReply(b.id, cfg.suspectAfterMs + 10)
    expect(a.m.tick(cfg.offlineAfterMs)).toBe(false)
    expect(a.m.receive(await heartbeatOf(b, 'leaving'), cfg.offlineAfterMs + 1).ringChanged).toBe(true)
    expect(a.m.ring.slots).toHaveLength(1)
  })

  it('revoking a member takes it out of the ring at once', async () => {
    const nodes = await Promise.all([node(1), node(2), node(3)])
    await converge(nodes, 0)
    const [a, , c] = nodes as [Node, Node, Node]
    expect(a.m.setCertified(nodes.filter((n) => n !== c).map((n) => ({ nodeId: n.id, name: n.name })), 1)).toBe(true)
    expect(a.m.ring.slots.map((s) => s.nodeId)).not.toContain(c.id)
    expect(a.m.receive(await heartbeatOf(c), 2)).toEqual({ dropped: 'not-member', ringChanged: false })
    expect(a.m.drops.get('not-member')).toBe(1)
  })

  it('ignores the sender\'s clock: ±20 s of skew changes nothing, silence is timed on our clock', async () => {
    const [a, b, c] = await Promise.all([node(1), node(2), node(3)])
    a.m.setCertified([b, c].map((n) => ({ nodeId: n.id, name: n.name })), 0)
    expect(a.m.receive(await heartbeatOf(b, 'alive', -20_000), 100).ringChanged).toBe(true)
    expect(a.m.receive(await heartbeatOf(c, 'alive', +20_000), 100).ringChanged).toBe(true)
    expect(a.m.tick(100 + cfg.suspectAfterMs - 1)).toBe(false)
    expect(a.m.members().map((m) => m.state)).toEqual(['online', 'online'])
    expect(a.m.tick(100 + cfg.offlineAfterMs)).toBe(true)
    expect(a.m.ring.slots.map((s) => s.nodeId)).toEqual([a.id])
  })

  it('capacity mode splits by cores when speeds are not measured', async () => {
    const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(1))
    const id = peerIdFromPrivateKey(key).toString()
    const m = new RingMembership({
      poolId: POOL, self: { nodeId: id, name: 'a' }, incarnation: 1, capacity: { ...cap, cores: 6 },
      model: '', addresses: [], mode: 'capacity', config: cfg
    }, 0)
    const b = await node(2, 0, 2)
    m.setCertified([{ nodeId: b.id, name: b.name }], 0)
    m.receive(await heartbeatOf(b), 0)
    const size = (nodeId: string): number => { const s = m.ring.slots.find((x) => x.nodeId === nodeId)!; return s.end - s.start }
    expect([size(id), size(b.id)]).toEqual([6144, 2048])
  })
})

describe('topology file and incarnation', () => {
  const dirs: string[] = []
  const tmp = (): string => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-ring-')); dirs.push(d); return d }
  afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }) })

  it('writes the topology atomically and reads it back', async () => {
    const home = tmp()
    const a = await node(1)
    const t = a.m.topology('2026-11-23T16:00:00.000Z')
    writeTopology(home, t)
    expect(fs.readdirSync(home)).toEqual([`ring_topology_${POOL}.json`])
    expect(readTopology(home, POOL)).toEqual(t)
    expect(readTopology(home, 'e'.repeat(64))).toBeUndefined()
  })

  it('names a hand-edited or truncated file', async () => {
    const home = tmp()
    const a = await node(1)
    writeTopology(home, a.m.topology('2026-11-23T16:00:00.000Z'))
    const file = topologyPath(home, POOL)
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"epoch": 1', '"epoch": "one"'))
    expect(() => readTopology(home, POOL)).toThrow(CorruptFileError)
    expect(() => readTopology(home, POOL)).toThrow(/epoch/)
    fs.writeFileSync(file, '{"version": 1, "po')
    expect(() => readTopology(home, POOL)).toThrow(file)
  })

  it('each start takes a higher incarnation, even if the clock went back', () => {
    const home = tmp()
    expect(nextIncarnation(home, 5000)).toBe(5000)
    expect(nextIncarnation(home, 6000)).toBe(6000)
    expect(nextIncarnation(home, 1000)).toBe(6001)
    fs.writeFileSync(path.join(home, 'ring_incarnation.json'), '{"incarnation": -3}')
    expect(() => nextIncarnation(home, 7000)).toThrow(CorruptFileError)
  })
})
