// `mesh remote provision` against real OpenSSH servers in network namespaces: the admin (n0) adds
// fresh "boxes" (n1, n2: their own HOME and MESH_HOME, nothing installed) over SSH, and the failures
// the issue names are produced for real: an unreachable box (every packet dropped), a wrong key, a
// changed host key, a box whose commands hang.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { RingReport } from '../../src/agent/net/pool-ring.js'
import { readPid } from '../../src/agent/pidfile.js'
import { expectGoldenInference } from './golden-inference.js'
import { createAdmin, until, type CreatedPool } from './lan-join.js'
import { installLossTools, NetnsLab, netnsUnavailable, type LabNode, type RunResult } from './netns.js'
import { clientConfig, keyPair, sshdUnavailable, startSshd } from './sshd.js'
import { BUNDLE_PATHS } from '../../src/ops/remote/bundle.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

function why (): string | undefined {
  const ns = netnsUnavailable()
  if (ns !== undefined) return ns
  const sshd = sshdUnavailable()
  if (sshd !== undefined) return sshd
  // the test set-up may install iptables (Debian); anything else is a clear skip
  return installLossTools()
}
const skip = why()
if (skip !== undefined) console.warn(`SKIPPED remote provision e2e test: ${skip}`)

interface Step { state: string, status: string, detail: string, ms: number }
interface Result { destination: string, state: string, changed: boolean, nodeId: string | null, error: string | null, steps: Step[], ms: number }

describe.skipIf(skip !== undefined)('mesh remote provision over a real sshd', () => {
  let lab: NetnsLab
  let admin: LabNode
  let pool: CreatedPool
  let dir = ''
  let sshConfig = ''
  let knownHosts = ''
  const boxHome = (n: LabNode): string => path.join(n.home, 'home')

  let meshCopy = ''
  /**
   * `mesh remote ARGS` on the admin node with the lab's ssh config, run from a copy of the built
   * tree: it is what gets bundled, and a rebuild of the checkout meanwhile must not look like a new version.
   */
  async function remote (args: string[], config = sshConfig): Promise<RunResult> {
    return await lab.mesh(admin, ['remote', ...args], { MESH_SSH_CONFIG: config }, 300_000, meshCopy)
  }
  async function provisionJson (dest: string, extra: string[] = [], config = sshConfig): Promise<{ r: RunResult, result: Result }> {
    const r = await remote(['provision', dest, '--json', ...extra], config)
    return { r, result: JSON.parse(r.stdout) as Result }
  }
  const states = (res: Result): string[] => res.steps.map((s) => `${s.state}:${s.status}`)
  const ringOf = async (): Promise<string[]> => {
    const rings = await callAgent<RingReport[]>(admin.home, 'GET', '/v1/ring')
    return rings.find((r) => r.poolId === pool.poolId)?.topology.members.map((m) => m.nodeId) ?? []
  }

  beforeAll(async () => {
    lab = NetnsLab.create(6)
    admin = lab.node(0)
    dir = lab.dir
    const copy = path.join(dir, 'mesh-copy')
    for (const p of BUNDLE_PATHS) fs.cpSync(path.join(ROOT, p), path.join(copy, p), { recursive: true })
    meshCopy = path.join(copy, 'dist/cli/mesh.js')
    const client = keyPair(path.join(dir, 'client_key'))
    const authorized = path.join(dir, 'authorized_keys')
    fs.writeFileSync(authorized, `${client.pub}\n`)
    knownHosts = path.join(dir, 'known_hosts')
    sshConfig = clientConfig(path.join(dir, 'ssh_config'), knownHosts, client.key)
    for (const i of [1, 2]) {
      const n = lab.node(i)
      await startSshd(n, dir, { port: 22, hostKey: keyPair(path.join(dir, `host_key_${n.name}`)).key, authorizedKeys: authorized, home: boxHome(n), meshHome: n.home })
    }
    // n2 also answers on 2201, where every command hangs
    await startSshd(lab.node(2), dir, { port: 2201, hostKey: keyPair(path.join(dir, 'host_key_hang')).key, authorizedKeys: authorized, home: boxHome(lab.node(2)), meshHome: lab.node(2).home, forceCommand: 'sleep 600' })
    pool = await createAdmin(lab, admin)
  }, 120_000)

  afterAll(() => {
    if (process.env.MESH_E2E_LOGS === '1') console.log(lab?.logs())
    lab?.destroy()
  })

  it('provisions a fresh box: new host key reported, mesh installed, joined with a fresh key, in the ring, golden inference', { timeout: 300_000 }, async () => {
    const box = lab.node(1)
    const { r, result } = await provisionJson(`root@${box.address}`, ['--name', 'box-1'])
    expect(r.code, r.stderr).toBe(0)
    expect(result).toMatchObject({ state: 'SUCCESS', changed: true })
    expect(states(result)).toEqual(['SSH_TESTING:done', 'OS_DETECTING:done', 'KEY_GENERATING:changed', 'INSTALLING:changed', 'CONNECTING:changed', 'VERIFYING:done'])
    expect(result.steps[0]?.detail).toMatch(/^connected; new host key ssh-ed25519 SHA256:\S+ added to known_hosts$/)
    expect(result.steps[1]?.detail).toBe('linux')
    expect(result.steps[3]?.detail).toMatch(/^installed mesh \S+ \(build [0-9a-f]{12}, .* sha256 checked\) into ~\/.local$/)
    for (const s of result.steps) expect(s.ms).toBeGreaterThanOrEqual(0)
    expect(fs.realpathSync(path.join(boxHome(box), '.local/bin/mesh'))).toMatch(/\.local\/lib\/mesh\/[^/]+\/dist\/cli\/mesh\.js$/)
    expect(await ringOf()).toContain(result.nodeId)
    // the key was spent by this node, and the box runs the installed copy's agent
    const keys = JSON.parse((await lab.mesh(admin, ['pool-key', 'list', '--json'])).stdout) as { keys: Array<{ state: string, uses: Array<{ nodeId: string }> }> }
    expect(keys.keys).toMatchObject([{ state: 'spent', uses: [{ nodeId: result.nodeId }] }])
    const pid = readPid(box.home)
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain(path.join(boxHome(box), '.local/lib/mesh'))
    await expectGoldenInference(lab, box)
  })

  it('a second run changes nothing and says so', { timeout: 120_000 }, async () => {
    const box = lab.node(1)
    const { r, result } = await provisionJson(`root@${box.address}`)
    expect(r.code, r.stderr).toBe(0)
    expect(result).toMatchObject({ state: 'SUCCESS', changed: false })
    expect(states(result)).toEqual(['SSH_TESTING:done', 'OS_DETECTING:done', 'KEY_GENERATING:skipped', 'INSTALLING:skipped', 'CONNECTING:skipped', 'VERIFYING:done'])
    const text = await remote(['provision', `root@${box.address}`])
    expect(text.code).toBe(0)
    expect(text.stdout.trim()).toMatch(/^SUCCESS: root@10\.77\.0\.2 is \S+ in the pool's ring; no changes/)
    expect(text.stderr).toMatch(/^SSH_TESTING …\nSSH_TESTING done \(\d+\.\d s\): connected\nOS_DETECTING …/)
    // no second key was made
    const keys = JSON.parse((await lab.mesh(admin, ['pool-key', 'list', '--json'])).stdout) as { keys: unknown[] }
    expect(keys.keys).toHaveLength(1)
  })

  it('a single-use key admits one device; the next one with it is refused', { timeout: 120_000 }, async () => {
    const key = JSON.parse(await lab.meshOk(admin, ['pool-key', 'create', '--json'])).key as string
    const join = async (n: LabNode, wait: number): Promise<RunResult> => {
      await lab.meshOk(n, ['init', '--network-id', 'lab', '--name', `keyed-${n.name}`])
      return await lab.mesh(n, ['pool-join', '--pool-id', pool.poolId, `--pool-root-pubkey=${pool.rootPublicKey}`, '--name', 'lab-pool', `--token=${key}`, '--start', '--wait', String(wait)], {}, 60_000)
    }
    const first = await join(lab.node(4), 30)
    expect(first.code, first.stderr).toBe(0)
    const second = await join(lab.node(5), 6)
    expect(second.code).not.toBe(0)
    const status = await callAgent<{ join: { refused: Record<string, number> } }>(admin.home, 'GET', '/v1/status')
    expect(status.join.refused['spent-key']).toBeGreaterThanOrEqual(1)
    await lab.meshOk(lab.node(5), ['stop'])
    await lab.meshOk(lab.node(4), ['stop'])
  })

  it('an unreachable box fails at SSH_TESTING within ConnectTimeout (10 s) plus slack, on one line', { timeout: 60_000 }, async () => {
    const dark = lab.node(3)
    lab.setLoss(dark, 1) // every packet dropped: the SYN is never answered
    const t0 = performance.now()
    const r = await remote(['provision', `root@${dark.address}`])
    const s = (performance.now() - t0) / 1000
    expect(r.code).toBe(1)
    expect(s).toBeGreaterThan(9)
    expect(s).toBeLessThan(16)
    const last = r.stderr.trim().split('\n').at(-1)
    expect(last).toMatch(/^mesh: SSH_TESTING: (ssh: connect to host 10\.77\.0\.4 port 22: Connection timed out|no answer from root@10\.77\.0\.4 within 10 s \(ssh was killed\)); fix: /)
    expect(r.stdout).toBe('')
  })

  it('a key the box does not accept: "Permission denied" on one line', { timeout: 60_000 }, async () => {
    const wrong = keyPair(path.join(dir, 'wrong_key'))
    const config = clientConfig(path.join(dir, 'ssh_config_nokey'), knownHosts, undefined)
    const r = await remote(['provision', `root@${lab.node(1).address}`, '--identity', wrong.key], config)
    expect(r.code).toBe(1)
    const last = r.stderr.trim().split('\n').at(-1)
    expect(last).toMatch(/^mesh: SSH_TESTING: root@10\.77\.0\.2: Permission denied \(publickey\)\.; fix: install your public key on the box/)
  })

  it('a changed host key is refused with ssh\'s reason', { timeout: 60_000 }, async () => {
    const box = lab.node(1)
    const other = keyPair(path.join(dir, 'impostor_host_key'))
    // known_hosts now says the box has another key, as after a reinstall (or an impostor)
    execFileSync('ssh-keygen', ['-q', '-R', box.address, '-f', knownHosts], { stdio: 'ignore' })
    fs.appendFileSync(knownHosts, `${box.address} ${other.pub.split(' ').slice(0, 2).join(' ')}\n`)
    const { r, result } = await provisionJson(`root@${box.address}`)
    expect(r.code).toBe(1)
    expect(result.state).toBe('EXIT_ERROR')
    expect(result.error).toMatch(/^SSH_TESTING: the host key of root@10\.77\.0\.2 has changed \(ssh: Host key for 10\.77\.0\.2 has changed and you have requested strict checking\..*\); fix: if the box was reinstalled, remove its old key with `ssh-keygen -R HOST`/)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    execFileSync('ssh-keygen', ['-q', '-R', box.address, '-f', knownHosts], { stdio: 'ignore' })
  })

  it('a command that hangs is killed at its step\'s timeout (connectivity: 10 s)', { timeout: 60_000 }, async () => {
    const t0 = performance.now()
    const { r, result } = await provisionJson(`root@${lab.node(2).address}`, ['--port', '2201'])
    const s = (performance.now() - t0) / 1000
    expect(r.code).toBe(1)
    expect(result.error).toBe('SSH_TESTING: no answer from root@10.77.0.3 within 10 s (ssh was killed); fix: check that `ssh root@10.77.0.3 true` returns at once; a login script that waits for input or a hung command blocks it')
    expect(s).toBeGreaterThan(9.5)
    expect(s).toBeLessThan(14)
    // no ssh left behind on the admin's side
    const pids = execFileSync('ip', ['netns', 'pids', admin.ns], { encoding: 'utf8' }).split('\n').filter((p) => p.trim() !== '')
    const comms = pids.map((p) => { try { return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() } catch { return '' } })
    expect(comms).not.toContain('ssh')
  })

  it('provision-all goes past a failing host and ends with a table', { timeout: 300_000 }, async () => {
    for (const add of [[`root@${lab.node(2).address}`, '--name', 'box-2'], [`root@${lab.node(2).address}`, '--port', '2'] /* nothing listens there */, [`root@${lab.node(1).address}`]]) {
      expect((await remote(['add', ...add])).code).toBe(0)
    }
    expect((await remote(['list'])).stdout).toBe('root@10.77.0.3  box-2\nroot@10.77.0.3  port 2\nroot@10.77.0.2\n')
    const r = await remote(['provision-all'])
    expect(r.code, r.stderr).toBe(1)
    const rows = r.stdout.trim().split('\n')
    expect(rows[0]).toMatch(/^HOST +STATE +CHANGES +NODE +TIME$/)
    expect(rows[1]).toMatch(/^root@10\.77\.0\.3 +SUCCESS +changed +12D3KooW\S+ +\d+\.\d s$/)
    expect(rows[2]).toMatch(/^root@10\.77\.0\.3 +EXIT_ERROR +no changes +- +\d+\.\d s$/)
    expect(rows[3], r.stderr).toMatch(/^root@10\.77\.0\.2 +SUCCESS +no changes +12D3KooW\S+/)
    expect(r.stderr).toMatch(/mesh: SSH_TESTING: ssh: connect to host 10\.77\.0\.3 port 2: Connection refused; fix: /)
    expect(r.stderr.trim().split('\n').at(-1)).toBe('mesh: 1 of 3 hosts failed (see above)')
    await until(async () => (await ringOf()).length === 3, 30_000, 'three members in the ring')
  })
})
