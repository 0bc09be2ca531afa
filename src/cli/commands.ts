import type { CommandModule } from 'yargs'
import { poolPeersCommand, startCommand, stopCommand } from './agent.js'
import { apiKeyCommand } from './api-key.js'
import { doctorCommand } from './doctor.js'
import { inferenceCommand } from './inference.js'
import { inferenceStatsCommand } from './inference-pool.js'
import { initCommand } from './init.js'
import type { CliIO, GlobalArgs } from '../process/io.js'
import { modelCommand } from './model.js'
import { poolApproveCommand, poolPolicyCommand, poolRejectCommand, poolRevokeCommand } from './pool-admin.js'
import { poolKeyCommand } from './pool-key.js'
import { poolCreateCommand, poolJoinCommand, poolListCommand, poolStatusCommand } from './pool.js'
import { remoteCommand } from './remote.js'
import { ringStatusCommand } from './ring.js'
import { serviceCommand } from './service.js'

/**
 * A mesh command: a yargs module whose handler gets the parsed args and the output streams.
 * `builder` declares the flags (with defaults and descriptions, so --help shows them).
 */
export type MeshCommand = (io: CliIO) => CommandModule<GlobalArgs, any>

/** Every `mesh` command, in the order --help lists them. Each group lives in its own module. */
export const commands: MeshCommand[] = [
  initCommand,
  poolCreateCommand, poolJoinCommand,
  startCommand, stopCommand,
  poolListCommand, poolStatusCommand, poolPeersCommand, ringStatusCommand,
  poolApproveCommand, poolRejectCommand, poolPolicyCommand, poolRevokeCommand, poolKeyCommand, remoteCommand,
  inferenceCommand, inferenceStatsCommand, modelCommand,
  apiKeyCommand,
  serviceCommand, doctorCommand
]
