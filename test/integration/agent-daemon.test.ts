import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import { apiSocket, pidFile, runDir } from '../../src/agent/paths.js'
import type { PeerView } from '../../src/agent/peers.js'
import { isAlive, readPid } from '../../src/agent/pidfile.js'
import { createPool, initDevice, readPoolRecord } from '../../src/pool/index.js'
import { MESH_JS, agentStatus, freeUdpPort, killAgents, logOf, mesh } from '../helpers/agent-procs.js'
import { snapshot, tempDirs } from '../helpers/pool-fixtures.js'

const tmp = tempDirs('mesh-agent-')
const homes: string[] = []
afterEach(() => { killAgents(homes.splice(0)) })
function home (): string { const h = tmp(); homes.push(h); return h }

// every step is a real `mesh` process; on a busy 2-core machine each takes seconds
describe('agent daemon lifecycle (child processes)', { timeout: 120_000 }, () => {
  it('says to run init first, and that the agent is not running', async () => {
    const h = home()
    const r = await mesh(h, ['start'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^mesh: .*mesh init/)
    const peers = await mesh(h, ['pool-peers', '--pool-id', 'ab'.repeat(32)])
    expect(peers.code).not.toBe(0)
    const stop = await mesh(h, ['stop'])
    expect(stop).toMatchObject({ code: 0, stdout: 'mesh agent is not running; nothing to stop\n' })
    // pool-join --wait needs an agent to ask for the certificate: said before anything is written
    initDevice(h, { networkId: 'lan', name: 'box' })
    const adminHome = tmp(); initDevice(adminHome, { networkId: 'lan', name: 'admin' })
    const pool = createPool(adminHome, { name: 'p', policy: 'token', now: Date.now() })
    const before = snapshot(h)
    const waited = await mesh(h, ['pool-join', '--pool-id', pool.record.poolId, '--pool-root-pubkey', pool.rootPublicKey, '--name', 'p', '--wait', '30'])
    expect(waited).toMatchObject({ code: 1, stdout: '', stderr: `mesh: the mesh agent is not running for ${h}; start it with \`mesh start\`\n` })
    expect(snapshot(h)).toEqual(before)
  })

  it('starts detached, refuses a second start, keeps its socket private, stops cleanly', async () => {
    const h = home()
    initDevice(h, { networkId: 'lan', name: 'box' })
    const port = await freeUdpPort()
    const started = await mesh(h, ['start', '--json', '--beacon-port', String(port)])
    expect(started.code).toBe(0)
    const { pid } = JSON.parse(started.stdout) as { pid: number }
    expect(isAlive(pid)).toBe(true)
    expect(fs.statSync(apiSocket(h)).mode & 0o777).toBe(0o600)
    expect(fs.statSync(runDir(h)).mode & 0o777).toBe(0o700)
    expect((await agentStatus(h)).beacon.port).toBe(port)

    const again = await mesh(h, ['start', '--beacon-port', String(port)])
    expect(again.code).toBe(1)
    expect(again.stderr).toBe(`mesh: the mesh agent is already running for ${h} (pid ${pid}); stop it with \`mesh stop\` first\n`)

    // pool-join --wait with nobody to answer: a clear timeout; the pool stays recorded and pending.
    // --start with the agent running starts nothing: the running agent picks the pool up
    const other = tmp(); initDevice(other, { networkId: 'lan', name: 'admin' })
    const pool = createPool(other, { name: 'p', policy: 'token', now: Date.now() })
    const join = ['pool-join', '--pool-id', pool.record.poolId, '--pool-root-pubkey', pool.rootPublicKey, '--name', 'p', '--token', pool.joinToken]
    const waited = await mesh(h, [...join, '--start', '--wait', '1'])
    expect(waited.code).toBe(1)
    expect(waited.stdout).toBe(`Recorded pool ${pool.record.poolId} "p"; waiting up to 1 s for a certificate from the admin…\n`)
    expect(waited.stderr).toMatch(/^mesh: no certificate for pool [0-9a-f]{16} within 1 s; check that the admin's agent runs on this LAN/)
    expect(readPoolRecord(h, pool.record.poolId).state).toBe('pending-certificate')

    const stop = await mesh(h, ['stop'])
    expect(stop).toMatchObject({ code: 0, stdout: `mesh agent stopped (pid ${pid})\n` })
    expect(isAlive(pid)).toBe(false)
    expect(fs.existsSync(pidFile(h))).toBe(false)
    expect(fs.existsSync(apiSocket(h))).toBe(false)
    const peers = await mesh(h, ['pool-peers', '--pool-id', 'ab'.repeat(32)])
    expect(peers.code).toBe(1)
  }, 90_000) // six `mesh` processes: slow when the 2-core machine is busy

  it('replaces a stale pid file left by a crash', async () => {
    const h = home()
    initDevice(h, { networkId: 'lan', name: 'box' })
    const dead = spawn(process.execPath, ['-e', ''])
    await new Promise((resolve) => dead.on('exit', resolve))
    fs.mkdirSync(runDir(h), { recursive: true })
    fs.writeFileSync(pidFile(h), `${dead.pid ?? 1}\n`)
    fs.writeFileSync(apiSocket(h), '') // a dead socket file too
    const r = await mesh(h, ['start', '--beacon-port', String(await freeUdpPort())])
    expect(r.code).toBe(0)
    expect(logOf(h)).toContain('removed the pid file of an agent that is gone')
    expect((await mesh(h, ['stop'])).code).toBe(0)
  })

  it('runs in the foreground and stops cleanly on SIGTERM', async () => {
    const h = home()
    initDevice(h, { networkId: 'lan', name: 'box' })
    const child = spawn(process.execPath, [MESH_JS, 'start', '--foreground', '--beacon-port', String(await freeUdpPort())], {
      env: { ...process.env, MESH_HOME: h, MESH_BEACON_INTERFACES: '' }, stdio: ['ignore', 'ignore', 'pipe']
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
    await vi.waitFor(() => { expect(stderr).toContain('Ctrl+C stops it') }, { timeout: 15_000, interval: 50 })
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(fs.existsSync(pidFile(h))).toBe(false)
    expect(logOf(h)).toContain('agent stopped')
  })

  it('rejects bad flags before starting anything', async () => {
    const h = home()
    initDevice(h, { networkId: 'lan', name: 'box' })
    const r = await mesh(h, ['start', '--beacon-group', '10.1.2.3'])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe('mesh: beacon group 10.1.2.3 is not an IPv4 multicast address (224.0.0.0-239.255.255.255)\n')
    expect(fs.existsSync(pidFile(h))).toBe(false)
    // pool-join --start checks the agent's settings before it records the pool
    const adminHome = tmp(); initDevice(adminHome, { networkId: 'lan', name: 'admin' })
    const pool = createPool(adminHome, { name: 'p', policy: 'token', now: Date.now() })
    const before = snapshot(h)
    const join = await mesh(h, ['pool-join', '--pool-id', pool.record.poolId, '--pool-root-pubkey', pool.rootPublicKey, '--name', 'p', '--start'], { MESH_BEACON_GROUP: '10.1.2.3' })
    expect(join).toMatchObject({ code: 2, stdout: '', stderr: 'mesh: beacon group 10.1.2.3 is not an IPv4 multicast address (224.0.0.0-239.255.255.255)\n' })
    expect(snapshot(h)).toEqual(before)
  })
})

describe('certificate join over unicast bootstrap on 127.0.0.1', { timeout: 120_000 }, () => {
  it('member gets its certificate and both list each other ONLINE', async () => {
    const admin = home(); const member = home()
    initDevice(admin, { networkId: 'lan', name: 'admin-box' })
    initDevice(member, { networkId: 'lan', name: 'member-box' })
    const pool = createPool(admin, { name: 'p', policy: 'token', now: Date.now() })
    const [pa, pm] = [await freeUdpPort(), await freeUdpPort()]
    expect((await mesh(admin, ['start', '--beacon-port', String(pa), '--bootstrap', `127.0.0.1:${pm}`])).code).toBe(0)
    // the new device in one command: record the pool, start the agent (its settings from the environment), wait for the certificate
    const joined = await mesh(member, ['pool-join', '--json', '--pool-id', pool.record.poolId, '--pool-root-pubkey', pool.rootPublicKey, '--name', 'p', '--token', pool.joinToken, '--start', '--wait', '20'],
      { MESH_BEACON_PORT: String(pm), MESH_BOOTSTRAP: `127.0.0.1:${pa}` })
    expect(joined, joined.stderr).toMatchObject({ code: 0, stderr: '' })
    const out = JSON.parse(joined.stdout) as { state: string, agent: { pid: number, log: string }, certificate: unknown }
    expect(out).toMatchObject({ poolId: pool.record.poolId, state: 'member', agent: { pid: readPid(member), log: path.join(member, 'logs', 'agent.log') } })
    expect(out.certificate).not.toBeNull()
    expect((await agentStatus(member)).beacon.port).toBe(pm)
    // poll the local API (cheap); the CLI output is checked once below
    const peersOf = async (h: string): Promise<string[][]> =>
      (await callAgent<PeerView[]>(h, 'GET', `/v1/peers?pool=${pool.record.poolId}`)).map((p) => [p.name, p.status])
    await vi.waitFor(async () => {
      expect(await peersOf(admin)).toEqual([['member-box', 'ONLINE']])
      expect(await peersOf(member)).toEqual([['admin-box', 'ONLINE']])
    }, { timeout: 20_000, interval: 100 })
    expect(readPoolRecord(member, pool.record.poolId).state).toBe('member')
    const json = JSON.parse((await mesh(admin, ['pool-peers', '--json', '--pool-id', pool.record.poolId.slice(0, 16)])).stdout) as PeerView[]
    expect(json.map((p) => [p.name, p.status, p.address])).toEqual([['member-box', 'ONLINE', '127.0.0.1']])
    const text = await mesh(member, ['pool-peers', '--pool-id', pool.record.poolId])
    expect(text.stdout).toMatch(/^NODE ID +NAME +ADDRESS +STATUS +LAST SEEN +PATH\n12D3KooW\S+ +admin-box +127\.0\.0\.1 +ONLINE +\d+s ago +(direct-lan|direct-wan|-)\n$/)
    // the peer cache is written when the agent stops
    expect((await mesh(member, ['stop'])).code).toBe(0)
    const cache = JSON.parse(fs.readFileSync(path.join(member, 'peers.json'), 'utf8')) as { peers: Array<{ name: string }> }
    expect(cache.peers.map((p) => p.name)).toEqual(['admin-box'])
  }, 90_000) // two agents and four `mesh` processes: slow when the machine is busy
})
