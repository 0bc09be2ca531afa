import { afterEach, describe, expect, it } from 'vitest'
import { readTopology } from '../../src/ring/topology.js'
import { expectGoldenInference } from './golden-inference.js'
import { NatLab, natUnavailable, type LabRelay, type NatSiteSpec } from './nat-lab.js'
import { certifiedPool, firewallRouters, pathTo, relayArgs, ringIs, startMember, startPair, statusOf, until, type PathsPool } from './nat-paths.js'
import { inNs, installLossTools, netnsUnavailable, type LabNode } from './netns.js'

const why = netnsUnavailable() ?? installLossTools() ?? natUnavailable()
if (why !== undefined) console.warn(`SKIPPED NAT path matrix e2e tests: ${why}`)

/**
 * The NAT matrix: which path two members end up on, per pair of NATs (nat-lab.ts builds them with
 * iptables: cone = MASQUERADE keeping ports, conntrack-filtered; symmetric = --random-fully). In
 * every cell the ring forms on both members, pool-status names the path each uses to the other,
 * and `mesh inference` gives the golden greedy text over it. Negative controls first: the sites
 * cannot reach each other's LANs, and NAT really translates their traffic.
 */
describe.skipIf(why !== undefined)('direct, hole-punched and relayed paths across NATs', () => {
  let lab: NatLab | undefined
  afterEach((ctx) => {
    // before the lab (and its logs) goes: onTestFailed would run after this hook
    if (ctx.task.result?.state === 'fail' && lab !== undefined) console.error(lab.logs())
    lab?.destroy()
    lab = undefined
  })

  interface Cell { lab: NatLab, relay: LabRelay, pool: PathsPool, a: LabNode, b: LabNode, ringMs: number }

  /** Build the lab, start the relay and both agents (a is the admin), wait for the ring of two on both. */
  async function cell (sites: NatSiteSpec[], pick: (l: NatLab) => [LabNode, LabNode], publicHosts = 0): Promise<Cell> {
    const l = NatLab.create({ sites, publicHosts })
    lab = l
    firewallRouters(l)
    const [a, b] = pick(l)
    return { lab: l, a, b, ...await startPair(l, a, b) }
  }

  /** Both members name `path` for each other (waiting up to `ms` for an upgrade), and inference is golden over it. */
  async function expectPath (c: Cell, path: string, ms: number): Promise<number> {
    const t0 = performance.now()
    await until(async () => await pathTo(c.lab, c.a, c.b, c.pool) === path && await pathTo(c.lab, c.b, c.a, c.pool) === path, ms, `path ${path} on both sides`)
    const upgradeMs = performance.now() - t0
    const { ms: inferMs } = await expectGoldenInference(c.lab, c.b)
    console.log(`nat e2e: ${path}: ring of 2 in ${Math.round(c.ringMs)} ms, path settled ${Math.round(upgradeMs)} ms later, 32 golden tokens in ${Math.round(inferMs)} ms`)
    return upgradeMs
  }

  it('negative controls: a site cannot reach another site\'s LAN nor be reached unasked; NAT translates', async () => {
    const l = NatLab.create({ sites: [{ kind: 'cone', members: 1 }, { kind: 'symmetric', members: 1 }] })
    lab = l
    firewallRouters(l)
    const [a, b] = [l.member(0, 0), l.member(1, 0)]
    const before = [l.natPackets(0), l.natPackets(1)]
    expect(await l.tcpReachable(a, b.address, 9)).toBe(false) // no route to another LAN
    expect(await l.tcpReachable(a, l.sites[1]!.wanAddress, 9)).toBe(false) // the router drops what nobody asked for
    expect(await l.tcpReachable(a, l.relayHost.address, 9)).toBe(true) // the internet answers (RST)
    expect(await l.tcpReachable(b, l.relayHost.address, 9)).toBe(true)
    expect(l.natPackets(0)).toBeGreaterThan(before[0]!)
    expect(l.natPackets(1)).toBeGreaterThan(before[1]!)
  }, 60_000)

  it('same LAN behind one NAT → direct-lan', async () => {
    const c = await cell([{ kind: 'cone', members: 2 }], (l) => [l.member(0, 0), l.member(0, 1)])
    await expectPath(c, 'direct-lan', 30_000)
  }, 240_000)

  it('public ↔ cone → direct-wan (the NATed member dials out)', async () => {
    const c = await cell([{ kind: 'cone', members: 1 }], (l) => [l.publicHost(0), l.member(0, 0)], 1)
    await expectPath(c, 'direct-wan', 30_000)
  }, 240_000)

  it('cone ↔ cone → hole-punched (WebRTC over UDP, signalled through the relay); the tensor plane leaves the relay', async () => {
    const c = await cell([{ kind: 'cone', members: 1 }, { kind: 'cone', members: 1 }], (l) => [l.member(0, 0), l.member(1, 0)])
    const upgradeMs = await expectPath(c, 'hole-punched', 60_000)
    console.log(`nat e2e: cone ↔ cone relayed → hole-punched within ${Math.round(upgradeMs)} ms of the ring`)
    const punched = (await Promise.all([c.a, c.b].map(async (n) => (await statusOf(c.lab, n)).net.holePunch?.succeeded ?? 0))).reduce((x, y) => x + y)
    expect(punched).toBe(1) // one side offers
    // the job above ran its tensor link on the punched connection: no link left on the relay
    const relayedLinks = (await Promise.all([c.a, c.b].map(async (n) => await statusOf(c.lab, n))))
      .flatMap((st) => Object.keys(st.net.tensorLinks).filter((peer) => st.nat.members.find((m) => m.nodeId === peer)?.path === 'relayed'))
    expect(relayedLinks).toEqual([])
    // WebRTC's native threads must not keep a stopping agent alive
    for (const n of [c.a, c.b]) expect(await c.lab.meshOk(n, ['stop'])).toMatch(/stopped/i)
  }, 240_000)

  for (const [name, kinds] of [['cone ↔ symmetric', ['cone', 'symmetric']], ['symmetric ↔ symmetric', ['symmetric', 'symmetric']]] as const) {
    it(`${name} → relayed (punching fails and backs off; the relay carries everything)`, async () => {
      const c = await cell(kinds.map((kind) => ({ kind, members: 1 })), (l) => [l.member(0, 0), l.member(1, 0)])
      // the punch is tried (cone ↔ symmetric) or skipped (both measured symmetric), and fails: the pair stays relayed
      const punch = async (): Promise<{ tried: number, punched: number, bothSymmetric: boolean }> => {
        const [sa, sb] = await Promise.all([statusOf(c.lab, c.a), statusOf(c.lab, c.b)])
        return {
          tried: (sa.net.holePunch?.failed ?? 0) + (sb.net.holePunch?.failed ?? 0),
          punched: (sa.net.holePunch?.succeeded ?? 0) + (sb.net.holePunch?.succeeded ?? 0),
          bothSymmetric: sa.nat.nat.type === 'symmetric' && sb.nat.nat.type === 'symmetric'
        }
      }
      await until(async () => { const p = await punch(); return p.tried > 0 || p.punched > 0 || p.bothSymmetric }, 60_000, 'a failed (or skipped) punch')
      expect((await punch()).punched).toBe(0)
      await expectPath(c, 'relayed', 10_000)
    }, 240_000)
  }

  it('relay down: the relayed ring falls apart, and re-forms within 30 s of the relay coming back', async () => {
    const c = await cell([{ kind: 'symmetric', members: 1 }, { kind: 'symmetric', members: 1 }], (l) => [l.member(0, 0), l.member(1, 0)])
    c.relay.proc.kill('SIGKILL')
    await until(async () => !ringIs([c.a, c.b], c.pool), 30_000, 'the ring to lose a member without the relay')
    const t0 = performance.now()
    await c.lab.startRelay(relayArgs(c.pool)) // same home: same peer id and port
    const ms = await until(async () => ringIs([c.a, c.b], c.pool), 30_000, 'the ring of two again')
    console.log(`nat e2e: relay back → ring of 2 again in ${Math.round(ms)} ms (${Math.round(performance.now() - t0)} ms with the relay's start)`)
    await expectPath(c, 'relayed', 10_000)
  }, 240_000)

  it('address change: a member moved to another LAN address is back in every ring without a restart', async () => {
    const l = NatLab.create({ sites: [{ kind: 'cone', members: 2 }], publicHosts: 1 })
    lab = l
    firewallRouters(l)
    const [pub, a, m] = [l.publicHost(0), l.member(0, 0), l.member(0, 1)]
    const pool = certifiedPool([pub, a, m])
    const relay = await l.startRelay(relayArgs(pool))
    for (const n of [pub, a, m]) await startMember(l, n, relay, pool, pub)
    await until(async () => ringIs([pub, a, m], pool), 60_000, 'a ring of three')
    const site = l.sites[0]!
    const moved = site.gateway.replace(/\.1$/, '.77')
    inNs(m.ns, 'ip', 'addr', 'del', `${m.address}/24`, 'dev', 'eth0')
    inNs(m.ns, 'ip', 'addr', 'add', `${moved}/24`, 'dev', 'eth0')
    inNs(m.ns, 'ip', 'route', 'replace', 'default', 'via', site.gateway)
    const mid = pool.ids.get(m) ?? ''
    // back: both others hold m in their ring, and heard it announce its new address
    const back = async (): Promise<boolean> => {
      if (!ringIs([pub, a, m], pool)) return false
      const views = await Promise.all([pub, a].map(async (n) => await statusOf(l, n)))
      return views.every((v) => v.nat.members.some((x) => x.nodeId === mid && x.path !== null))
    }
    const announced = (): boolean => [pub, a].every((n) => readTopology(n.home, pool.poolId)?.members.find((x) => x.nodeId === mid)?.addresses.some((x) => x.startsWith(`/ip4/${moved}/`)) === true)
    const ms = await until(async () => announced() && await back(), 60_000, 'the moved member back in every ring at its new address')
    const f = await Promise.all([pub, a].map(async (n) => (await statusOf(l, n)).net.freshness))
    console.log(`nat e2e: address change ${m.address} → ${moved}: back in every ring in ${Math.round(ms)} ms (freshness queries ${f.map((x) => `${x.queries} asked/${x.answers} answered/${x.found} found`).join(', ')})`)
    await expectGoldenInference(l, a)
  }, 240_000)
})
