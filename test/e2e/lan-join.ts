/**
 * The LAN join scenario on a NetnsLab, shared by the e2e test and bench/agent-join.ts: an admin
 * creates a pool and starts its agent; a member runs init + pool-join + start; we wait until the
 * member holds its certificate and both agents list each other ONLINE.
 */
import { callAgent } from '../../src/agent/api/client.js'
import type { AgentStatus } from '../../src/agent/agent.js'
import type { PeerView } from '../../src/agent/peers.js'
import type { LabNode, NetnsLab } from './netns.js'

export interface CreatedPool { poolId: string, rootPublicKey: string, joinToken: string }

export async function createAdmin (lab: NetnsLab, node: LabNode, policy: 'token' | 'manual' = 'token'): Promise<CreatedPool> {
  await lab.meshOk(node, ['init', '--network-id', 'lab', '--name', `admin-${node.name}`])
  const pool = JSON.parse(await lab.meshOk(node, ['pool-create', '--name', 'lab-pool', '--policy', policy, '--json'])) as CreatedPool
  await lab.meshOk(node, ['start'])
  return pool
}

export async function joinMember (lab: NetnsLab, node: LabNode, pool: CreatedPool, token: string | undefined): Promise<void> {
  await lab.meshOk(node, ['init', '--network-id', 'lab', '--name', `member-${node.name}`])
  await lab.meshOk(node, ['pool-join', '--pool-id', pool.poolId, '--pool-root-pubkey', pool.rootPublicKey, '--name', 'lab-pool',
    ...(token === undefined ? [] : ['--token', token])])
}

/** The member holds a certificate (per its agent) and each side lists the other ONLINE. */
export async function joined (admin: LabNode, member: LabNode, poolId: string): Promise<boolean> {
  const [status, adminPeers, memberPeers] = await Promise.all([
    callAgent<AgentStatus>(member.home, 'GET', '/v1/status'),
    callAgent<PeerView[]>(admin.home, 'GET', `/v1/peers?pool=${poolId}`),
    callAgent<PeerView[]>(member.home, 'GET', `/v1/peers?pool=${poolId}`)
  ])
  const hasCert = status.pools.some((p) => p.poolId === poolId && p.state === 'member' && p.certSerial !== null)
  const online = (peers: PeerView[], name: string): boolean => peers.some((p) => p.name === name && p.status === 'ONLINE')
  return hasCert && online(adminPeers, `member-${member.name}`) && online(memberPeers, `admin-${admin.name}`)
}

/** Poll `check` every 20 ms until it is true; the elapsed ms, or an error after timeoutMs. */
export async function until (check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const t0 = performance.now()
  for (;;) {
    if (await check().catch(() => false)) return performance.now() - t0
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
