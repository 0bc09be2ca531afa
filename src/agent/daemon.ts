/**
 * Starting, finding and stopping the agent process. Kept apart from foreground.ts so that commands
 * which only talk to a running agent do not load the agent itself (and the libp2p stack under it).
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkModelFiles } from '../inference/served.js'
import { loadDevice } from '../pool/index.js'
import type { AgentStatus } from './agent.js'
import { callAgent } from './api/client.js'
import { envOverrides, readAgentFile, resolveAgentConfig, type AgentConfig, type AgentOverrides } from './config.js'
import { AgentAlreadyRunningError, AgentNotRunningError, AgentStartError, AgentStopError } from './errors.js'
import { agentLogFile } from './log.js'
import { localCheckpoint } from './model-files.js'
import { formatApiAddress, isLoopbackHost } from './api/openai/address.js'
import { checkApiExposure } from './api/openai/keys.js'
import { daemonOutFile, pidFile } from './paths.js'
import { isAlive, readPid } from './pidfile.js'

/** The agent's configuration for `home`: defaults ← agent.json ← environment ← flags. */
export function agentConfig (home: string, flags: AgentOverrides, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return resolveAgentConfig(home, readAgentFile(home), envOverrides(env), flags)
}

/** The running agent's status, or undefined when none answers. */
export async function runningAgent (home: string): Promise<AgentStatus | undefined> {
  try {
    return await callAgent<AgentStatus>(home, 'GET', '/v1/status', 2000)
  } catch (err) {
    if (err instanceof AgentNotRunningError) return undefined
    throw err
  }
}

/**
 * The detached agent's entry: the agent alone, without the CLI (named so `ps` and the pid check see
 * "mesh"). The bundle that `npm run build` makes (scripts/bundle.mjs) loads several times faster
 * than the ~780 modules it holds; a build without it runs the modules as they are. Both this module
 * and the bundle's chunks sit one level under dist/, so the same relative path finds it from either.
 */
function agentScript (): string {
  const bundle = fileURLToPath(new URL('../bundle/mesh-agent.js', import.meta.url))
  return fs.existsSync(bundle) ? bundle : fileURLToPath(new URL('../agent/mesh-agent.js', import.meta.url))
}
/** how `mesh start` hands its flags to the detached agent (JSON of AgentOverrides) */
export const OVERRIDES_ENV = 'MESH_AGENT_OVERRIDES'
const READY_TIMEOUT_MS = 15_000
/**
 * how often `mesh start` asks whether the agent answers yet (cheap: ENOENT until the API listens)
 * and `mesh stop` whether it exited: half of it is added to the wait on average
 */
const POLL_MS = 20
/** the agent hashes its model before it answers: allow for a slow disk (50 MB/s) on top */
const HASH_BYTES_PER_MS = 50_000

/** A start that passed `checkStart`: what `spawnAgent` needs. */
export interface StartPlan {
  home: string
  flags: AgentOverrides
  /** how long the agent may take to answer, its model's hashing included */
  readyTimeoutMs: number
}

/**
 * What `mesh start` checks before it starts anything, so that a problem is one line here rather
 * than from the background: `mesh init` done, the flags and agent.json valid, the model's files
 * sound (the agent hashes them; one to fetch is the agent's business), no agent running.
 */
export async function checkStart (home: string, flags: AgentOverrides): Promise<StartPlan> {
  loadDevice(home)
  const config = agentConfig(home, flags)
  if (config.api !== undefined) checkApiExposure(home, formatApiAddress(config.api.address), isLoopbackHost(config.api.address.host))
  const checkpointPath = localCheckpoint(config.model, home)
  if (checkpointPath !== null) await checkModelFiles({ ...config.model, checkpointPath })
  const readyTimeoutMs = READY_TIMEOUT_MS + (checkpointPath === null ? 0 : Math.round(fs.statSync(checkpointPath).size / HASH_BYTES_PER_MS))
  const up = await runningAgent(home)
  if (up !== undefined) throw new AgentAlreadyRunningError(home, up.pid)
  return { home, flags, readyTimeoutMs }
}

/** `mesh start`: check, then run the agent detached; returns once its local API answers. */
export async function startDetached (home: string, flags: AgentOverrides): Promise<AgentStatus> {
  return await spawnAgent(await checkStart(home, flags))
}

/**
 * Run the agent detached (its own session, output to logs/agent.out) and return once its local
 * API answers, or fail with what it printed if it exits first.
 */
export async function spawnAgent ({ home, flags, readyTimeoutMs }: StartPlan): Promise<AgentStatus> {
  const outFile = daemonOutFile(home)
  fs.mkdirSync(path.dirname(outFile), { recursive: true, mode: 0o700 })
  const startOffset = fs.existsSync(outFile) ? fs.statSync(outFile).size : 0
  const out = fs.openSync(outFile, 'a', 0o600)
  const child = spawn(process.execPath, [agentScript(), home], {
    detached: true, stdio: ['ignore', out, out], env: { ...process.env, [OVERRIDES_ENV]: JSON.stringify(flags) }
  })
  fs.closeSync(out)
  let exited: string | undefined
  child.on('exit', (code, signal) => { exited = signal !== null ? `signal ${signal}` : `code ${code ?? '?'}` })
  child.unref()

  const deadline = Date.now() + readyTimeoutMs
  for (;;) {
    const status = await runningAgent(home).catch(() => undefined)
    if (status !== undefined && status.pid === child.pid) return status
    if (exited !== undefined) {
      const said = readFrom(outFile, startOffset).trim().split('\n').filter((l) => l.trim() !== '').pop()
      throw new AgentStartError(`the agent exited at start-up (${exited})${said !== undefined ? `: ${said.replace(/^mesh: /, '')}` : ''}; see ${agentLogFile(home)}`)
    }
    if (Date.now() > deadline) {
      throw new AgentStartError(`the agent (pid ${child.pid ?? '?'}) did not answer within ${Math.round(readyTimeoutMs / 1000)} s; see ${agentLogFile(home)}`)
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

function readFrom (file: string, offset: number): string {
  try { return fs.readFileSync(file).subarray(offset).toString('utf8') } catch { return '' }
}

const STOP_TIMEOUT_MS = 10_000

/** `mesh stop`: ask the agent to stop and wait for its process to exit. Returns its pid, or undefined if none ran. */
export async function stopAgent (home: string): Promise<number | undefined> {
  const up = await runningAgent(home)
  if (up === undefined) {
    const pid = readPid(home)
    if (pid !== undefined && !isAlive(pid)) fs.rmSync(pidFile(home), { force: true })
    return undefined
  }
  await callAgent(home, 'POST', '/v1/stop')
  const deadline = Date.now() + STOP_TIMEOUT_MS
  while (isAlive(up.pid)) {
    if (Date.now() > deadline) throw new AgentStopError(`the agent (pid ${up.pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s; kill it with \`kill ${up.pid}\``)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
  return up.pid
}
