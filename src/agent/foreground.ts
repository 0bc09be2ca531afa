import { loadDevice } from '../pool/index.js'
import { createAgent } from './agent.js'
import type { AgentOverrides } from './config.js'
import { agentConfig, runningAgent } from './daemon.js'
import { AgentAlreadyRunningError } from './errors.js'
import { createAgentLogger } from './log.js'

/**
 * `mesh start --foreground`: run the agent in this process until SIGINT/SIGTERM or `mesh stop`.
 * `onReady` runs once the local API answers.
 */
export async function runForeground (home: string, flags: AgentOverrides, opts: { logToStderr: boolean, onReady?: (pid: number) => void }): Promise<void> {
  const device = loadDevice(home) // NotInitializedError before `mesh init`
  const config = agentConfig(home, flags)
  const up = await runningAgent(home)
  if (up !== undefined) throw new AgentAlreadyRunningError(home, up.pid)
  const log = createAgentLogger(home, { level: process.env.MESH_LOG_LEVEL, stderr: opts.logToStderr })
  const agent = createAgent(config, { device, log })
  const onSignal = (sig: NodeJS.Signals): void => {
    log.info({ signal: sig }, 'stopping on signal')
    void agent.stop()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    await agent.start()
    opts.onReady?.(process.pid)
    await agent.stopped
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

