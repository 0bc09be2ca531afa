import { afterEach, describe, expect, it, onTestFailed } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { AgentStatus } from '../../src/agent/agent.js'
import { createAdmin, joined, joinMember, until } from './lan-join.js'
import { NetnsLab, netnsUnavailable } from './netns.js'

const unavailable = netnsUnavailable()
const labs: NetnsLab[] = []
afterEach(() => { for (const l of labs.splice(0)) l.destroy() })
function lab (n: number): NetnsLab {
  const l = NetnsLab.create(n); labs.push(l)
  onTestFailed(() => { console.error(l.logs()) })
  return l
}

describe.skipIf(unavailable !== undefined)(`LAN join in network namespaces${unavailable !== undefined ? ` (SKIPPED: ${unavailable})` : ''}`, () => {
  it('a member with the token gets its certificate by multicast and both list each other ONLINE', async () => {
    const l = lab(2); const [admin, member] = [l.node(0), l.node(1)]
    const pool = await createAdmin(l, admin)
    await joinMember(l, member, pool, pool.joinToken)
    const t0 = performance.now()
    await l.meshOk(member, ['start'])
    const up = performance.now() - t0
    await until(async () => await joined(admin, member, pool.poolId), 20_000, 'certificate and ONLINE on both sides')
    console.log(`e2e: member start → certificate + both ONLINE in ${Math.round(performance.now() - t0)} ms (\`mesh start\` returned after ${Math.round(up)} ms)`)

    const peers = JSON.parse(await l.meshOk(member, ['pool-peers', '--pool-id', pool.poolId, '--json'])) as Array<{ name: string, address: string, status: string }>
    expect(peers.map((p) => [p.name, p.address, p.status])).toEqual([['admin-n0', '10.77.0.1', 'ONLINE']])
    const status = JSON.parse(await l.meshOk(member, ['pool-status', '--json'])) as {
      pools: Array<{ state: string, peers: Record<string, number> }>, agent: { beacon: { interfaces: string[], accepted: number, drops: Record<string, number> } }
    }
    expect(status.pools.map((p) => [p.state, p.peers.ONLINE])).toEqual([['member', 1]])
    expect(status.agent.beacon.interfaces).toEqual(['10.77.0.2'])
    expect(status.agent.beacon.accepted).toBeGreaterThan(0)
    expect(status.agent.beacon.drops['bad-signature']).toBe(0)
  }, 120_000)

  it('wrong token and manual policy: no certificate until pool-approve on the admin', async () => {
    const l = lab(3); const [admin, wrong, manual] = [l.node(0), l.node(1), l.node(2)]
    const tokenPool = await createAdmin(l, admin)
    const manualPool = JSON.parse(await l.meshOk(admin, ['pool-create', '--name', 'manual-pool', '--policy', 'manual', '--json'])) as typeof tokenPool
    await joinMember(l, wrong, tokenPool, 'A'.repeat(43))
    await l.meshOk(wrong, ['start'])
    await l.meshOk(manual, ['init', '--network-id', 'lab', '--name', 'member-n2'])
    await l.meshOk(manual, ['start'])
    // as device2.sh does: join on a running agent and wait (here until the admin approves)
    const waiting = l.mesh(manual, ['pool-join', '--pool-id', manualPool.poolId, '--pool-root-pubkey', manualPool.rootPublicKey, '--name', 'manual-pool', '--wait', '60'])

    const adminStatus = async (): Promise<AgentStatus> => await callAgent<AgentStatus>(admin.home, 'GET', '/v1/status')
    const state = async (home: string, poolId: string): Promise<string | undefined> =>
      (await callAgent<AgentStatus>(home, 'GET', '/v1/status')).pools.find((p) => p.poolId === poolId)?.state
    // the admin has heard both requests (refused / held): that is when absence of a certificate means something
    await until(async () => { const s = await adminStatus(); return (s.join.refused['bad-token'] ?? 0) > 0 && s.join.pending > 0 }, 20_000, 'both requests at the admin')
    expect(await state(wrong.home, tokenPool.poolId)).toBe('pending-certificate')
    expect(await state(manual.home, manualPool.poolId)).toBe('pending-certificate')
    const log = l.logs()
    expect(log.match(/refused a certificate request/g)?.length).toBe(1) // logged once, though retried

    for (const [node, pool] of [[wrong, tokenPool], [manual, manualPool]] as const) {
      const nodeId = (await callAgent<AgentStatus>(node.home, 'GET', '/v1/status')).nodeId
      await l.meshOk(admin, ['pool-approve', nodeId, '--pool-id', pool.poolId])
      // a refused (wrong-token) member gets its certificate with its next request, and its backoff
      // reaches 30 s (±20 %) by now on a slow machine: wait longer than that
      await until(async () => await state(node.home, pool.poolId) === 'member', 45_000, `certificate for ${node.name} after approval`)
    }
    const waited = await waiting
    expect(waited.code).toBe(0)
    expect(waited.stdout).toMatch(/Certificate received: this device is a member of pool [0-9a-f]{16}/)
  }, 180_000)
})
