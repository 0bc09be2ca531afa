import { loadDevice } from '../pool/index.js'
import { createAgent } from './agent.js'
import type { AgentConfig, AgentOverrides } from './config.js'
import { agentConfig, runningAgent } from './daemon.js'
import { AgentAlreadyRunningError } from './errors.js'
import { createAgentLogger, type Logger } from './log.js'
import { planModel, type ModelPlan } from './model-service.js'
import { releaseWebRtc } from './net/hole-punch.js'

/** Check and hash the model before anything starts (a bad file stops the start with one line), or plan its fetch. */
async function serveModel (config: AgentConfig, log: Logger): Promise<ModelPlan> {
  const start = performance.now()
  let logged = 0
  const plan = await planModel(config.model, config.home, (read, total) => {
    // a large model takes seconds to hash: say how far it got every 10 %
    if (read - logged < total / 10 && read < total) return
    logged = read
    log.info({ read, total }, 'hashing the model')
  })
  if (plan.kind === 'serve') {
    const m = plan.model
    log.info({ model: m.identity.id, checkpoint: m.checkpointPath, checkpointSha256: m.identity.checkpointSha256, tokenizer: m.tokenizerPath, ms: Math.round(performance.now() - start) }, 'serving model')
  }
  return plan
}

/**
 * `mesh start --foreground`: run the agent in this process until SIGINT/SIGTERM or `mesh stop`.
 * `onReady` runs once the local API answers.
 */
/**
 * An agent's kernel threads (native engine, OpenMP) spin 10,000 times before sleeping instead of
 * libgomp's 300,000 (about a millisecond), read when the addon loads: a job pauses at every
 * all-reduce, and agents that share cores (several on one machine, a busy laptop) starved each
 * other while idle threads spun through those pauses (0.7 → 9.3 tok/s for three agents on two
 * cores; `--threads 1` is the real cure, bench/README.md). It costs `--local` about 6 % at two
 * threads, so only agents do it; a user's own OpenMP settings win.
 */
function yieldingOpenMp (): void {
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) process.env.GOMP_SPINCOUNT = '10000'
}

export async function runForeground (home: string, flags: AgentOverrides, opts: {
  logToStderr: boolean
  onReady?: (pid: number) => void
  /** when the process started and finished its imports (epoch ms), logged for start-up profiling */
  boot?: { processStartedAt: number, importsDoneAt: number }
}): Promise<void> {
  yieldingOpenMp()
  const device = loadDevice(home) // NotInitializedError before `mesh init`
  const config = agentConfig(home, flags)
  const up = await runningAgent(home)
  if (up !== undefined) throw new AgentAlreadyRunningError(home, up.pid)
  const log = createAgentLogger(home, { level: process.env.MESH_LOG_LEVEL, stderr: opts.logToStderr })
  if (opts.boot !== undefined) log.info(opts.boot, 'agent process up')
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
    await releaseWebRtc()
  }
}

