import { MeshError } from '../errors.js'

/** A command needs live data and no agent answers on this MESH_HOME. */
export class AgentNotRunningError extends MeshError {
  constructor (readonly home: string) {
    super(`the mesh agent is not running for ${home}; start it with \`mesh start\``)
  }
}

/** `mesh start` while an agent already runs on this MESH_HOME. */
export class AgentAlreadyRunningError extends MeshError {
  constructor (readonly home: string, readonly pid: number) {
    super(`the mesh agent is already running for ${home} (pid ${pid}); stop it with \`mesh stop\` first`)
  }
}

/** The agent process did not come up (it exited, or did not answer in time). */
export class AgentStartError extends MeshError {}

/** `mesh stop`: the agent did not exit in time. */
export class AgentStopError extends MeshError {}

/** The agent answered with an error, or not in time. */
export class AgentApiError extends MeshError {}

/** The local API socket cannot be created (e.g. a MESH_HOME path too long for a Unix socket). */
export class AgentSocketError extends MeshError {}

/** A model fetched from the pool that this member cannot serve (it does not load, or a checkpoint does not fit its tokenizer). */
export class ModelFetchFailedError extends MeshError {}
