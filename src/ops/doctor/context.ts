/**
 * What doctor's checks look at, read once and shared: the device, the agent's configuration, the
 * running agent's status and rings, and the services installed for this MESH_HOME. Each loader
 * runs on first use; a check that needs one another check has vetted calls it after that check.
 */
import os from 'node:os'
import type { AgentStatus } from '../../agent/agent.js'
import { callAgent } from '../../agent/api/client.js'
import type { AgentConfig } from '../../agent/config.js'
import { agentConfig, runningAgent } from '../../agent/daemon.js'
import type { RingReport } from '../../agent/net/pool-ring.js'
import { loadDevice, type Device } from '../../pool/index.js'
import { execRunner, serviceState, servicesFor, systemdRunning, type Runner, type ServiceState } from '../service/systemd.js'

export interface DoctorContext {
  readonly home: string
  /** wall clock, ms */
  readonly now: () => number
  readonly device: () => Device
  readonly config: () => AgentConfig
  /** undefined when no agent answers */
  readonly agent: () => Promise<AgentStatus | undefined>
  readonly rings: () => Promise<RingReport[]>
  /** services installed for this home; null where there is no systemd to ask */
  readonly services: () => Promise<{ booted: boolean, states: ServiceState[] }>
}

function once<T> (load: () => T): () => T {
  let done: { value: T } | undefined
  return () => { done ??= { value: load() }; return done.value }
}

/** how long doctor waits for the local API (runningAgent waits as long): less than the agent check's deadline, so that says why */
const AGENT_ANSWER_MS = 2000

export function doctorContext (home: string, env: NodeJS.ProcessEnv = process.env, run: Runner = execRunner): DoctorContext {
  return {
    home,
    now: () => Date.now(),
    device: once(() => loadDevice(home)),
    config: once(() => agentConfig(home, {}, env)),
    agent: once(async () => await runningAgent(home)),
    rings: once(async () => await callAgent<RingReport[]>(home, 'GET', '/v1/ring', AGENT_ANSWER_MS)),
    services: once(async () => {
      const booted = systemdRunning()
      const targets = servicesFor(home, os.homedir())
      return { booted, states: await Promise.all(targets.map(async (t) => await serviceState(t, run, booted))) }
    })
  }
}
