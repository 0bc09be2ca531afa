/**
 * The NAT matrix's scenario, shared by test/e2e/nat-paths.test.ts and bench/nat-paths.ts: a NatLab
 * (nat-lab.ts) with mesh-relay on the internet, members certified ahead (the join across a NAT is
 * tested on its own), each agent started with the relay and the admin's relayed address as its
 * bootstrap peer; then wait for the ring on every member and read the path each names for the others.
 */
import fs from 'node:fs'
import { createPool, initDevice } from '../../src/pool/index.js'
import { readTopology } from '../../src/ring/topology.js'
import type { AgentStatus } from '../../src/agent/agent.js'
import { certify } from '../helpers/pools.js'
import { until } from './lan-join.js'
export { until }
import type { NatLab, LabRelay } from './nat-lab.js'
import { inNs, type LabNode } from './netns.js'

export interface PathsPool { poolId: string, rootPublicKey: string, ids: Map<LabNode, string> }

/** Identities in every node's MESH_HOME; `nodes[0]` creates the pool and certifies the others by the real request flow. */
export function certifiedPool (nodes: readonly LabNode[]): PathsPool {
  const ids = new Map<LabNode, string>()
  const devices = nodes.map((n, i) => {
    const name = i === 0 ? 'admin' : n.name
    const d = { home: n.home, nodeId: initDevice(n.home, { networkId: 'nat-lab', name }).nodeId, name }
    ids.set(n, d.nodeId)
    return d
  })
  const [admin, ...members] = devices
  if (admin === undefined) throw new Error('no admin')
  const created = createPool(admin.home, { name: 'nat-lab', policy: 'token', now: Date.now() })
  const pool = { poolId: created.record.poolId, rootPublicKey: created.rootPublicKey, joinToken: created.joinToken, admin }
  for (const m of members) certify(pool, m)
  return { poolId: pool.poolId, rootPublicKey: pool.rootPublicKey, ids }
}

/**
 * Each site's router also drops unsolicited packets addressed to itself, as a home router's
 * firewall does. Without it, the first ICE check reaching router B before B's own check left
 * creates a conntrack entry for router B itself (the packet is answered with ICMP and confirmed),
 * and B's own mapping towards A then clashes with it and gets another port: Linux turns into a
 * symmetric NAT for exactly that pair, and no punch can work. Dropped in INPUT, the entry is never
 * confirmed. (A candidate for nat-lab.ts itself.)
 */
export function firewallRouters (lab: NatLab): void {
  for (const s of lab.sites) inNs(s.router, 'iptables', '-A', 'INPUT', '-i', 'eth0', '-m', 'conntrack', '--ctstate', 'NEW,INVALID', '-j', 'DROP')
}

export const relayArgs = (pool: PathsPool): string[] => ['--pool-root-pubkey', pool.rootPublicKey]

/** `mesh start` for a lab member: one kernel thread (two cores shared), the relay, the admin through it. */
export async function startMember (lab: NatLab, node: LabNode, relay: LabRelay, pool: PathsPool, admin: LabNode): Promise<void> {
  const adminId = pool.ids.get(admin) ?? ''
  const bootstrap = node === admin ? [] : ['--bootstrap', `${relay.addr}/p2p-circuit/p2p/${adminId}`]
  await lab.meshOk(node, ['start', '--threads', '1', '--relay', relay.addr, ...bootstrap])
}

/** The relay and two agents started (a is the admin); resolves once both ring files hold both, with the ms from the first start. */
export async function startPair (lab: NatLab, a: LabNode, b: LabNode): Promise<{ relay: LabRelay, pool: PathsPool, ringMs: number }> {
  const pool = certifiedPool([a, b])
  const relay = await lab.startRelay(relayArgs(pool))
  const t0 = performance.now()
  await startMember(lab, a, relay, pool, a)
  await startMember(lab, b, relay, pool, a)
  await until(async () => ringIs([a, b], pool), 90_000, 'a ring of two on both members')
  return { relay, pool, ringMs: performance.now() - t0 }
}

/** Names in a member's ring file, sorted. */
export function ringNames (node: LabNode, poolId: string): string[] {
  return readTopology(node.home, poolId)?.members.map((m) => m.nodeId).sort() ?? []
}

/** Whether every node's ring file holds exactly these nodes. */
export function ringIs (nodes: readonly LabNode[], pool: PathsPool): boolean {
  const want = nodes.map((n) => pool.ids.get(n) ?? '').sort().join()
  return nodes.every((n) => fs.existsSync(n.home) && ringNames(n, pool.poolId).join() === want)
}

export async function statusOf (lab: NatLab, node: LabNode): Promise<AgentStatus> {
  return (JSON.parse(await lab.meshOk(node, ['pool-status', '--json'])) as { agent: AgentStatus }).agent
}

/** The path `node` uses to `peer` now, per its pool-status (undefined while not connected). */
export async function pathTo (lab: NatLab, node: LabNode, peer: LabNode, pool: PathsPool): Promise<string | undefined> {
  return (await statusOf(lab, node)).nat.members.find((m) => m.nodeId === pool.ids.get(peer))?.path ?? undefined
}
