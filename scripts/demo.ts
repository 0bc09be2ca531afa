/**
 * `npm run demo`: two agents on this machine, each with a temporary MESH_HOME, form a pool the
 * way two devices would (init, pool-create, start, pool-join with the token, certificate over
 * beacons, ring over libp2p), then one prompt runs across both with the text streaming and each
 * member's share and time shown. Everything is removed at the end, also on Ctrl+C.
 * Beacons go by unicast on 127.0.0.1 (two agents on one host; multicast is not needed).
 */
import { execFile, spawn } from 'node:child_process'
import dgram from 'node:dgram'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const MESH = fileURLToPath(new URL('../dist/cli/mesh.js', import.meta.url))
const PROMPT = process.env.DEMO_PROMPT ?? 'Once upon a time'
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-demo-'))
const homes = { a: path.join(root, 'alice'), b: path.join(root, 'bob') }

const step = (text: string): void => { process.stderr.write(`\n== ${text}\n`) }

/** `mesh args` with MESH_HOME=home; its stdout, or a thrown error with its stderr. */
async function mesh (home: string, args: string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(process.execPath, [MESH, ...args], { env: { ...process.env, MESH_HOME: home } }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`mesh ${args[0] ?? ''} failed: ${stderr.trim() || err.message}`)); else resolve(stdout)
    })
  })
}

/** `mesh args` with its output on this terminal (the streaming text). */
async function meshLive (home: string, args: string[]): Promise<void> {
  const child = spawn(process.execPath, [MESH, ...args], { env: { ...process.env, MESH_HOME: home }, stdio: 'inherit' })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`mesh ${args[0] ?? ''} exited with ${code ?? 'a signal'}`)
}

async function freePort (): Promise<number> {
  const s = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => { s.bind(0, '127.0.0.1', () => { resolve() }) })
  const port = s.address().port
  await new Promise<void>((resolve) => { s.close(() => { resolve() }) })
  return port
}

async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

async function cleanup (): Promise<void> {
  for (const home of Object.values(homes)) await mesh(home, ['stop']).catch(() => '')
  fs.rmSync(root, { recursive: true, force: true })
}
process.once('SIGINT', () => { void cleanup().finally(() => process.exit(130)) })

try {
  const [portA, portB] = [await freePort(), await freePort()]
  const beacons = (own: number, other: number): string[] => ['--beacon-port', String(own), '--bootstrap', `127.0.0.1:${other}`]

  step('two devices: alice creates a pool, bob joins it with the token')
  await mesh(homes.a, ['init', '--network-id', 'demo', '--name', 'alice'])
  await mesh(homes.b, ['init', '--network-id', 'demo', '--name', 'bob'])
  const pool = JSON.parse(await mesh(homes.a, ['pool-create', '--name', 'demo-pool', '--json'])) as { poolId: string, rootPublicKey: string, joinToken: string }
  process.stderr.write(`pool ${pool.poolId.slice(0, 16)}…\n`)
  await mesh(homes.a, ['start', ...beacons(portA, portB)])
  await mesh(homes.b, ['pool-join', '--pool-id', pool.poolId, `--pool-root-pubkey=${pool.rootPublicKey}`, '--name', 'demo-pool', `--token=${pool.joinToken}`])
  await mesh(homes.b, ['start', ...beacons(portB, portA)])

  step('waiting for bob\'s certificate (over beacons) and the ring (gossip over libp2p)')
  await waitFor('a ring of two', async () => {
    const rings = await Promise.all(Object.values(homes).map(async (h) => JSON.parse(await mesh(h, ['ring-status', '--json'])) as Array<{ converged: boolean, topology: { members: unknown[] } }>))
    return rings.every((r) => r[0]?.converged === true && r[0].topology.members.length === 2)
  })
  await meshLive(homes.a, ['ring-status'])

  step(`mesh inference --prompt "${PROMPT}" on bob: both members compute every layer`)
  await meshLive(homes.b, ['inference', '--prompt', PROMPT, '--max-tokens', '200', '--temperature', '0'])

  step('mesh inference-stats on bob')
  await meshLive(homes.b, ['inference-stats'])
} catch (err) {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
} finally {
  step('stopping both agents and removing their homes')
  await cleanup()
}
