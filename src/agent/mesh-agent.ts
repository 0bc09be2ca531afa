/**
 * The detached agent process that `mesh start` launches: `node mesh-agent.js HOME`, flags in
 * MESH_AGENT_OVERRIDES. It loads the agent only, not the whole CLI, so the agent is up sooner.
 * Errors follow the CLI's rule: a MeshError is one line on stderr (which `mesh start` reports).
 */
import '../polyfill.js'
import { MeshError } from '../errors.js'
import { parseOverrides } from './config.js'
import { OVERRIDES_ENV } from './daemon.js'
import { runForeground } from './foreground.js'

// static imports are evaluated before this line runs: the gap to the process start is their cost
const boot = { processStartedAt: Math.round(performance.timeOrigin), importsDoneAt: Date.now() }
const home = process.argv[2]
function readOverrides (): ReturnType<typeof parseOverrides> {
  try { return parseOverrides(JSON.parse(process.env[OVERRIDES_ENV] ?? '{}')) } catch { return { problem: 'not JSON' } }
}
const overrides = readOverrides()
if (home === undefined || 'problem' in overrides) {
  process.stderr.write(`mesh: the agent was started without a valid MESH_HOME or ${OVERRIDES_ENV}; use \`mesh start\`\n`)
  process.exitCode = 2
} else {
  try {
    await runForeground(home, overrides, { logToStderr: false, boot })
  } catch (err) {
    if (!(err instanceof MeshError)) throw err
    process.stderr.write(`mesh: ${err.message}\n`)
    process.exitCode = err.exitCode
  }
}
