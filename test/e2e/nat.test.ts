/**
 * Across NATs (issue #17, first half), in the NAT lab (nat-lab.ts): mesh-relay on the "internet"
 * 11.0.0.2 (TCP 4001, STUN on UDP 3478/3479), a public host 11.0.0.3, a member behind a cone NAT
 * (MASQUERADE, site 0) that is the pool's admin, a member behind a symmetric NAT (MASQUERADE
 * --random-fully, site 1). Cells, in order: negative controls; NAT types as the routers implement
 * them; the relay and the public host announce their public addresses; the symmetric member joins
 * with `pool-join --bootstrap <admin's relayed address>` (no beacon crosses the routers) and the
 * ring forms over the relay; golden greedy inference over the relayed path; a relayed job far
 * beyond libp2p's 128 KiB default, counted in bytes at the relay.
 */
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest'
import { readTopology } from '../../src/ring/topology.js'
import { expectGoldenInference } from './golden-inference.js'
import { NatLab, natUnavailable, RELAY_ADDRESS, type LabRelay } from './nat-lab.js'
import { inNs, installLossTools, netnsUnavailable, type LabNode } from './netns.js'
import { fixedDevice } from '../helpers/pool-fixtures.js'

const PROBE_JS = fileURLToPath(new URL('../../dist/nat/probe.js', import.meta.url))
const GOLDEN = fileURLToPath(new URL('../fixtures/golden/stories260K-greedy.json', import.meta.url))
/** tokens of the long relayed job: with the prompt, within the 256-step golden run */
const LONG_TOKENS = 240

const why = netnsUnavailable() ?? installLossTools() ?? natUnavailable()
if (why !== undefined) console.warn(`SKIPPED NAT e2e tests: ${why}`)

interface NatJson { nat: { type: string, publicEndpoint: string | null, hairpin: boolean | null, measuredAt: string | null, servers: Array<{ server: string, mapped: string | null }> }, reachability: { kind: string }, connections: Record<string, number>, members: Array<{ nodeId: string, path: string | null, address: string | null }> }
interface AgentJson { nodeId: string, net: { addresses: string[], tensorLinks: Record<string, string> }, nat: NatJson & { bootstrap: Array<{ addr: string, peerId: string, connected: boolean, failures: number, lastError: string | null }> } }

describe.skipIf(why !== undefined)('across NATs: STUN NAT detection, joining through the relay, relayed jobs', () => {
  let lab: NatLab
  let relay: LabRelay
  let pub: LabNode
  let admin: LabNode // behind the cone NAT
  let member: LabNode // behind the symmetric NAT
  let pool = { poolId: '', rootPublicKey: '', joinToken: '' }

  const agentOf = async (n: LabNode): Promise<AgentJson> => (JSON.parse(await lab.meshOk(n, ['pool-status', '--json'])) as { agent: AgentJson }).agent
  const ringOf = (n: LabNode): string[] => readTopology(n.home, pool.poolId)?.members.map((m) => m.name).sort() ?? []

  beforeAll(async () => {
    lab = NatLab.create({ sites: [{ kind: 'cone', members: 1 }, { kind: 'symmetric', members: 1 }], publicHosts: 1 })
    pub = lab.publicHost(0); admin = lab.member(0, 0); member = lab.member(1, 0)
    for (const [n, name] of [[pub, 'pub'], [admin, 'admin'], [member, 'member']] as const) await lab.meshOk(n, ['init', '--network-id', 'lab', '--name', name])
    pool = JSON.parse(await lab.meshOk(admin, ['pool-create', '--json', '--name', 'lab'])) as typeof pool
    relay = await lab.startRelay(['--pool-root-pubkey', pool.rootPublicKey])
    // bytes through the relay's TCP port, both directions (a counting rule: no target)
    inNs(lab.relayHost.ns, 'iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', '4001')
    inNs(lab.relayHost.ns, 'iptables', '-A', 'OUTPUT', '-p', 'tcp', '--sport', '4001')
  }, 120_000)

  afterAll(() => { lab?.destroy() })

  it('negative controls: the LANs cannot reach each other nor be reached from the internet; both reach the relay through NAT', async () => {
    expect(await lab.tcpReachable(admin, member.address, 9)).toBe(false)
    expect(await lab.tcpReachable(member, admin.address, 9)).toBe(false)
    expect(await lab.tcpReachable(pub, admin.address, 9)).toBe(false)
    const before = [lab.natPackets(0), lab.natPackets(1)]
    expect(await lab.tcpReachable(admin, RELAY_ADDRESS, 4001)).toBe(true)
    expect(await lab.tcpReachable(member, RELAY_ADDRESS, 4001)).toBe(true)
    expect([lab.natPackets(0), lab.natPackets(1)].every((n, i) => n > (before[i] ?? 0))).toBe(true)
    // a host on the internet that routes to the site's LAN through its router is dropped there: only replies come in
    const drops = lab.forwardDrops(0)
    inNs(pub.ns, 'ip', 'route', 'add', lab.sites[0]?.lanSubnet ?? '', 'via', lab.sites[0]?.wanAddress ?? '')
    expect(await lab.tcpReachable(pub, admin.address, 9)).toBe(false)
    inNs(pub.ns, 'ip', 'route', 'del', lab.sites[0]?.lanSubnet ?? '')
    expect(lab.forwardDrops(0)).toBeGreaterThan(drops)
    expect(relay.stunPorts).toEqual([3478, 3479])
  })

  it('the relay and a member on a public address print and announce it', async () => {
    expect(relay.addresses).toContain(`/ip4/${RELAY_ADDRESS}/tcp/4001/p2p/${relay.peerId}`)
    await lab.meshOk(pub, ['start', '--relay', relay.addr])
    let port = ''
    await vi.waitFor(async () => {
      port = /\/tcp\/(\d+)/.exec((await agentOf(pub)).net.addresses.find((a) => a.startsWith(`/ip4/${pub.address}/tcp/`)) ?? '')?.[1] ?? ''
      expect(port).not.toBe('')
    }, { timeout: 20_000, interval: 250 })
    // with a public address it answers STUN on the UDP port of its libp2p TCP port: probed from behind the cone NAT
    const js = `import('${PROBE_JS}').then(async (m) => { const o = await m.probeNat([{ address: '${pub.address}', port: ${port} }]); console.log(JSON.stringify(o.observation.answers)) })`
    const answers = JSON.parse(inNs(admin.ns, process.execPath, '-e', js)) as Array<{ mapped: { address: string } | null }>
    expect(answers.map((a) => a.mapped?.address)).toEqual([lab.sites[0]?.wanAddress])
  }, 60_000)

  it('each agent measures the NAT type its router implements (UDP, by STUN at the relay)', async () => {
    onTestFailed(() => { console.error(lab.logs()) })
    await lab.meshOk(admin, ['start', '--relay', relay.addr])
    await lab.meshOk(member, ['start', '--relay', relay.addr])
    const t0 = performance.now()
    const measured = async (n: LabNode): Promise<NatJson['nat']> => {
      let nat: NatJson['nat'] | undefined
      await vi.waitFor(async () => {
        nat = (await agentOf(n)).nat.nat
        expect(nat.measuredAt).not.toBeNull()
      }, { timeout: 20_000, interval: 200 })
      return nat as NatJson['nat']
    }
    const [p, a, m] = [await measured(pub), await measured(admin), await measured(member)]
    console.log(`nat e2e: NAT types measured within ${Math.round(performance.now() - t0)} ms of the agents' start: public ${p.type} ${p.publicEndpoint ?? ''}, cone site ${a.type} ${a.publicEndpoint ?? ''}, symmetric site ${m.type} ${m.publicEndpoint ?? ''}`)
    expect(p).toMatchObject({ type: 'public', hairpin: true })
    expect(p.publicEndpoint).toMatch(new RegExp(`^${pub.address.replace(/\./g, '\\.')}:\\d+$`))
    expect(a).toMatchObject({ type: 'cone', hairpin: false })
    expect(a.publicEndpoint).toMatch(new RegExp(`^${(lab.sites[0]?.wanAddress ?? '').replace(/\./g, '\\.')}:\\d+$`))
    expect(m).toMatchObject({ type: 'symmetric', publicEndpoint: `${lab.sites[1]?.wanAddress ?? ''}:*` })
    expect(m.servers.map((s) => s.server).sort()).toEqual([`${RELAY_ADDRESS}:3478`, `${RELAY_ADDRESS}:3479`])
    await lab.meshOk(pub, ['stop'])
  }, 90_000)

  it('a member behind the symmetric NAT joins with pool-join --bootstrap <admin relayed address>; the ring forms over the relay', async () => {
    onTestFailed(() => { console.error(lab.logs()) })
    let adminRelayed = ''
    await vi.waitFor(async () => {
      adminRelayed = (await agentOf(admin)).net.addresses.find((x) => x.includes('/p2p-circuit/')) ?? ''
      expect(adminRelayed).toMatch(/\/p2p-circuit\/p2p\//)
    }, { timeout: 30_000, interval: 250 })
    await lab.meshOk(member, ['stop'])
    const t0 = performance.now()
    await lab.meshOk(member, ['pool-join', '--pool-id', pool.poolId, '--pool-root-pubkey', pool.rootPublicKey, '--name', 'lab', '--token', pool.joinToken,
      '--bootstrap', adminRelayed, '--start'], { MESH_RELAYS: relay.addr })
    await vi.waitFor(() => {
      expect(ringOf(admin)).toEqual(['admin', 'member'])
      expect(ringOf(member)).toEqual(['admin', 'member'])
    }, { timeout: 90_000, interval: 100 })
    console.log(`nat e2e: pool-join --bootstrap through the relay → ring of 2 on both in ${Math.round(performance.now() - t0)} ms`)
    // the certificate came over libp2p (no beacon crosses the routers): the admin answered a /mesh/cert-request stream
    expect((JSON.parse(await lab.meshOk(admin, ['pool-status', '--json'])) as { agent: { join: { libp2p: { answered: number } } } }).agent.join.libp2p.answered).toBeGreaterThanOrEqual(1)
    const m = await agentOf(member)
    expect(m.nat.members.map((x) => x.path)).toEqual(['relayed'])
    expect(m.nat.connections.relayed).toBeGreaterThanOrEqual(1)
    const peers = JSON.parse(await lab.meshOk(member, ['pool-peers', '--pool-id', pool.poolId, '--json'])) as Array<{ name: string, path: string | null }>
    expect(peers.map((p) => [p.name, p.path])).toEqual([['admin', 'relayed']])
  }, 150_000)

  it('mesh inference gives the golden greedy text over the relayed path', async () => {
    onTestFailed(() => { console.error(lab.logs()) })
    const { result, ms } = await expectGoldenInference(lab, member)
    expect(result.members).toHaveLength(2)
    const links = (await agentOf(member)).net.tensorLinks
    expect(Object.values(links)).toEqual(['stream'])
    console.log(`nat e2e: 32 golden tokens on 2 members over the relay in ${Math.round(ms)} ms`)
  }, 180_000)

  it('a relayed job beyond 128 KiB (libp2p\'s default limit, both directions) runs to the end', async () => {
    onTestFailed(() => { console.error(lab.logs()) })
    const bytes = (): number => ['INPUT', 'OUTPUT'].reduce((sum, chain) => {
      const out = inNs(lab.relayHost.ns, 'iptables', '-L', chain, '-v', '-n', '-x')
      return sum + out.split('\n').filter((l) => l.includes(':4001')).reduce((s, l) => s + Number(l.trim().split(/\s+/)[1] ?? 0), 0)
    }, 0)
    const before = bytes()
    const t0 = performance.now()
    const r = await lab.mesh(member, ['inference', '--prompt', 'Once upon a time', '--max-tokens', String(LONG_TOKENS), '--temperature', '0', '--json'], {}, 170_000)
    const ms = performance.now() - t0
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as { generated_tokens: number, token_ids: number[], members: unknown[] }
    expect(out.members).toHaveLength(2)
    expect(out.generated_tokens).toBe(LONG_TOKENS)
    // greedy: a prefix of llama2.c's 256-step run of the same prompt
    const golden = (JSON.parse(fs.readFileSync(GOLDEN, 'utf8')) as { generations: Array<{ prompt: string, steps: number, token_ids: number[] }> })
      .generations.find((g) => g.prompt === 'Once upon a time' && g.steps === 256)
    expect(out.token_ids).toEqual(golden?.token_ids.slice(0, out.token_ids.length))
    const moved = bytes() - before
    console.log(`nat e2e: relayed job of ${out.generated_tokens} tokens in ${Math.round(ms)} ms moved ${(moved / 1024).toFixed(0)} KiB through the relay (both directions, both legs)`)
    expect(moved).toBeGreaterThan(4 * 128 * 1024)
  }, 180_000)
  it('a bootstrap peer PEER_ID@HOST:PORT is dialled and must prove that id; an impostor\'s address is refused and retried with backoff', async () => {
    onTestFailed(() => { console.error(lab.logs()) })
    const impostor = fixedDevice(99).nodeId // claims the relay's address
    await lab.meshOk(pub, ['start', '--bootstrap', `${relay.peerId}@${RELAY_ADDRESS}:4001`, '--bootstrap', `${impostor}@${RELAY_ADDRESS}:4001`])
    await vi.waitFor(async () => {
      const b = (await agentOf(pub)).nat.bootstrap
      expect(b.find((x) => x.peerId === relay.peerId)).toMatchObject({ addr: `/ip4/${RELAY_ADDRESS}/tcp/4001/p2p/${relay.peerId}`, failures: 0, lastError: null })
      const bad = b.find((x) => x.peerId === impostor)
      expect(bad?.connected).toBe(false)
      expect(bad?.failures).toBeGreaterThanOrEqual(2) // retried, 1 s then 2 s later
      expect(bad?.lastError).not.toBeNull()
    }, { timeout: 30_000, interval: 250 })
    console.log(`nat e2e: impostor bootstrap refused: ${(await agentOf(pub)).nat.bootstrap.find((x) => x.peerId === impostor)?.lastError ?? ''}`)
    await lab.meshOk(pub, ['stop'])
  }, 60_000)
})
