import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest'
import { readTopology } from '../../src/ring/topology.js'
import { DEVICE1_SH, DEVICE2_SH, namespacePids, ScriptRun } from './demo-scripts.js'
import { expectGoldenInference } from './golden-inference.js'
import { NetnsLab, netnsUnavailable, type LabNode } from './netns.js'

const why = netnsUnavailable()
if (why !== undefined) console.warn(`SKIPPED demo script e2e tests: ${why}`)

/**
 * The two-box quick start as a user runs it: device1.sh in one namespace, device2.sh in another
 * with device1's .pool-info copied into its working directory, the LAN a real bridge.
 */
describe.skipIf(why !== undefined)('scripts/device1.sh and device2.sh across network namespaces', () => {
  let lab: NetnsLab
  let admin: LabNode
  let member: LabNode
  let cwd2: string
  const runs: ScriptRun[] = []

  beforeAll(() => {
    lab = NetnsLab.create(2)
    admin = lab.node(0); member = lab.node(1)
    cwd2 = path.join(lab.dir, 'device2-cwd')
    fs.mkdirSync(cwd2)
  })
  afterAll(() => { lab?.destroy() })

  function report (): void {
    for (const r of runs) console.error(`===== ${r.node.name} script output\n${r.lines.map((l) => l.text).join('\n').slice(-20_000)}`)
    console.error(lab.logs())
  }

  function poolInfo (): Record<string, string> {
    const text = fs.readFileSync(path.join(admin.home, '.pool-info'), 'utf8')
    return Object.fromEntries(text.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
  }

  const ringSize = (n: LabNode, poolId: string): number => readTopology(n.home, poolId)?.members.length ?? 0

  /** Start both scripts; the timeline of device2.sh: certificate and two-member ring on both sides. */
  async function runBoth (): Promise<{ d1: ScriptRun, d2: ScriptRun, poolId: string, certMs: number, ringMs: number }> {
    fs.rmSync(path.join(admin.home, '.pool-info'), { force: true })
    const d1 = new ScriptRun(admin, DEVICE1_SH, { cwd: lab.dir })
    runs.push(d1)
    await vi.waitFor(() => { expect(d1.lineAt(/mesh agent running/)).toBeDefined() }, { timeout: 120_000, interval: 50 })
    const info = poolInfo()
    const poolId = info.POOL_ID ?? ''
    fs.copyFileSync(path.join(admin.home, '.pool-info'), path.join(cwd2, '.pool-info'))

    const d2 = new ScriptRun(member, DEVICE2_SH, { cwd: cwd2 })
    runs.push(d2)
    let certMs = 0
    await vi.waitFor(() => {
      expect(fs.readFileSync(path.join(member.home, 'pools', `${poolId}.json`), 'utf8')).toContain('"state": "member"')
    }, { timeout: 60_000, interval: 20 })
    certMs = performance.now() - d2.startedAt
    await vi.waitFor(() => {
      expect(ringSize(admin, poolId)).toBe(2)
      expect(ringSize(member, poolId)).toBe(2)
    }, { timeout: 30_000, interval: 20 })
    const ringMs = performance.now() - d2.startedAt
    return { d1, d2, poolId, certMs, ringMs }
  }

  async function stopBoth (d1: ScriptRun, d2: ScriptRun): Promise<void> {
    // Ctrl+C in each terminal: exit 130, and nothing of the agent, relay or control plane is left
    expect(await d2.interrupt()).toBe(130)
    expect(await d1.interrupt()).toBe(130)
    expect(namespacePids(admin)).toEqual([])
    expect(namespacePids(member)).toEqual([])
  }

  it('the member joins: pool-peers, ring-status and the ring file show two members of 4096 columns; inference gives the golden text; Ctrl+C stops all', async () => {
    onTestFailed(report)
    const { d1, d2, poolId, certMs, ringMs } = await runBoth()
    // the script polls the ring file every 100 ms: its own "ring ready" line may come a little later
    await vi.waitFor(() => { expect(d2.lineAt(/ring ready: 2 members/)).toBeDefined() }, { timeout: 30_000, interval: 20 })
    const scriptCert = d2.lineAt(/certificate received/)
    const scriptRing = d2.lineAt(/ring ready/)
    console.log(`demo e2e timeline: device2.sh start → certificate ${Math.round(certMs)} ms → ring of 2 on both ${Math.round(ringMs)} ms` +
      ` (the script reported them at ${Math.round(scriptCert ?? -1)} / ${Math.round(scriptRing ?? -1)} ms); agent running ${Math.round(d2.lineAt(/mesh agent running/) ?? -1)} ms`)

    const info = poolInfo()
    expect(info.POOL_ROOT_PUBKEY).toMatch(/^[0-9a-f]{64}$/)
    expect(info.RELAY).toMatch(/^\/ip4\/10\.77\.0\.1\/tcp\/4001\/p2p\/12D3Koo/)
    expect(info.CONTROL_PLANE).toMatch(/^http:\/\/10\.77\.0\.1:80\d\d$/)
    expect(fs.statSync(path.join(admin.home, '.pool-info')).mode & 0o777).toBe(0o600)
    expect(d1.text()).toContain(`Pool ID:              ${poolId}`)

    for (const n of [admin, member]) {
      const topo = readTopology(n.home, poolId)!
      expect(topo.members.map((m) => [m.name, m.end - m.start]).sort()).toEqual([['device1', 4096], ['device2', 4096]])
      const ring = JSON.parse(await lab.meshOk(n, ['ring-status', '--json', '--pool-id', poolId])) as Array<{ converged: boolean, topology: { members: Array<{ start: number, end: number }> } }>
      expect(ring[0]?.topology.members.map((m) => m.end - m.start)).toEqual([4096, 4096])
      const peers = JSON.parse(await lab.meshOk(n, ['pool-peers', '--json', '--pool-id', poolId])) as Array<{ name: string, status: string }>
      expect(peers.map((p) => [p.name, p.status])).toEqual([[n === admin ? 'device2' : 'device1', 'ONLINE']])
    }
    for (const f of ['relay.log', 'control-plane.log']) expect(fs.statSync(path.join(admin.home, 'logs', f)).size).toBeGreaterThan(0)

    // the quick start's last step: a generation on the two-member ring, from either box
    const { result, ms } = await expectGoldenInference(lab, member)
    expect(result.members.map((m) => m.leader)).toContain(false)
    expect(result.members).toHaveLength(2)
    console.log(`demo e2e: mesh inference, 32 tokens on the ring of 2, ${Math.round(ms)} ms wall time (${Math.round(performance.now() - d2.startedAt)} ms after device2.sh started)`)
    await stopBoth(d1, d2)
  }, 300_000)

  it('running both scripts again keeps the keys and the single pool, and the ring forms again', async () => {
    onTestFailed(report)
    const keyOf = (n: LabNode): string => fs.readFileSync(path.join(n.home, 'keys', 'device.key'), 'hex')
    const before = { admin: keyOf(admin), member: keyOf(member), poolId: poolInfo().POOL_ID, token: poolInfo().JOIN_TOKEN }
    const { d1, d2, poolId } = await runBoth()
    expect(d1.text()).toContain('device already initialised')
    expect(d1.text()).toContain('reusing this device\'s pool "test-pool"')
    expect(d2.text()).toContain('already recorded')
    expect({ admin: keyOf(admin), member: keyOf(member), poolId, token: poolInfo().JOIN_TOKEN }).toEqual(before)
    for (const n of [admin, member]) {
      const pools = JSON.parse(await lab.meshOk(n, ['pool-list', '--json'])) as unknown[]
      expect(pools).toHaveLength(1)
    }
    await stopBoth(d1, d2)
  }, 300_000)

  it('fails fast with one clear line: no .pool-info and no terminal; a taken relay port', async () => {
    onTestFailed(report)
    const empty = path.join(lab.dir, 'empty-cwd')
    fs.mkdirSync(empty)
    fs.rmSync(path.join(member.home, '.pool-info'), { force: true })
    const d2 = new ScriptRun(member, DEVICE2_SH, { cwd: empty })
    runs.push(d2)
    expect(await d2.exited).toBe(1)
    expect(d2.text()).toMatch(/^device2\.sh: no \.pool-info \(looked at .*\) and no terminal to ask on; copy the file device1\.sh wrote here$/m)

    const bad = new ScriptRun(admin, DEVICE1_SH, { cwd: lab.dir, env: { RELAY_PORT: 'x1' } })
    runs.push(bad)
    expect(await bad.exited).toBe(1)
    expect(bad.text()).toBe('device1.sh: RELAY_PORT=x1 is not a port number (1-65535)')

    // something else holds the relay port: the script stops at once and leaves nothing running
    const blocker = spawn('ip', ['netns', 'exec', admin.ns, process.execPath, '-e', 'require("net").createServer().listen(4001, () => console.log("up"))'], { stdio: ['ignore', 'pipe', 'ignore'] })
    await new Promise((resolve) => blocker.stdout.once('data', resolve))
    const d1 = new ScriptRun(admin, DEVICE1_SH, { cwd: lab.dir })
    runs.push(d1)
    expect(await d1.exited).toBe(1)
    expect(d1.text()).toMatch(/^device1\.sh: relay did not start: mesh-relay: port 4001 on 0\.0\.0\.0 is already in use; stop what uses it or pick another --port \(log: .*relay\.log\)$/m)
    expect(namespacePids(admin)).toEqual([String(blocker.pid)])
    blocker.kill()
  }, 60_000)
})
