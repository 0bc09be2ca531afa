import { loadDevice } from '../pool/index.js'
import { createAgent } from './agent.js'
import { identifyModel, type ServedModel } from '../inference/served.js'
import type { AgentConfig, AgentOverrides } from './config.js'
import { agentConfig, runningAgent } from './daemon.js'
import { AgentAlreadyRunningError } from './errors.js'
import { createAgentLogger, type Logger } from './log.js'

/** Check and hash the model before anything starts: a bad file stops the start with one line. */
async function serveModel (config: AgentConfig, log: Logger): Promise<ServedModel> {
  const start = performance.now()
  let logged = 0
  const model = await identifyModel(config.model, (read, total) => {
    // a large model takes seconds to hash: say how far it got every 10 %
    if (read - logged < total / 10 && read < total) return
    logged = read
    log.info({ read, total }, 'hashing the model')
  })
  log.info({ model: model.identity.id, checkpoint: model.checkpointPath, checkpointSha256: model.identity.checkpointSha256, tokenizer: model.tokenizerPath, ms: Math.round(performance.now() - start) }, 'serving model')
  return model
}

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
  const model = await serveModel(config, log)
  const agent = createAgent(config, { device, log, model })
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

