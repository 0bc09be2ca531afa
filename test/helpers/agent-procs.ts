import { execFile } from 'node:child_process'
import dgram from 'node:dgram'
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'
import { callAgent } from '../../src/agent/api/client.js'
import { readPid } from '../../src/agent/pidfile.js'

export const MESH_JS = fileURLToPath(new URL('../../dist/cli/mesh.js', import.meta.url))

export interface RunResult { code: number, stdout: string, stderr: string }

/** Run the built `mesh` with MESH_HOME=home. */
export async function mesh (home: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [MESH_JS, ...args], { env: { ...process.env, MESH_HOME: home, MESH_BEACON_INTERFACES: '', ...env }, timeout: 30_000 },
      (err, stdout, stderr) => { resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }) })
  })
}

/** A UDP port free right now on 127.0.0.1 (the kernel picks it). */
export async function freeUdpPort (): Promise<number> {
  const s = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => { s.bind(0, '127.0.0.1', () => { resolve() }) })
  const port = s.address().port
  await new Promise<void>((resolve) => { s.close(() => { resolve() }) })
  return port
}

/** Kill whatever agent still runs for these homes (after a failed test). */
export function killAgents (homes: string[]): void {
  for (const h of homes) {
    const pid = readPid(h)
    if (pid !== undefined) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
  }
}

export async function agentStatus (home: string): Promise<any> {
  return await callAgent(home, 'GET', '/v1/status')
}

export function logOf (home: string): string {
  try { return fs.readFileSync(`${home}/logs/agent.log`, 'utf8') } catch { return '' }
}

/**
 * Start an agent per home (recorded in `started` first, so afterEach can kill them), each with its
 * own beacon port and unicast beacons to all the others: no multicast needed on the test host.
 * `args`: more `mesh start` flags for every agent (e.g. --model).
 */
export async function startAgents (homes: readonly string[], started: string[], args: readonly string[] = []): Promise<number[]> {
  const ports = await Promise.all(homes.map(async () => await freeUdpPort()))
  await Promise.all(homes.map(async (home, i) => {
    started.push(home)
    const bootstrap = ports.filter((_, j) => j !== i).flatMap((p) => ['--bootstrap', `127.0.0.1:${p}`])
    const r = await mesh(home, ['start', '--beacon-port', String(ports[i]), ...bootstrap, ...args])
    if (r.code !== 0) throw new Error(`start failed: ${r.stderr}\n${logOf(home)}`)
  }))
  return ports
}
