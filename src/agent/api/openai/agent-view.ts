import os from 'node:os'
import path from 'node:path'
import type { ServedModel } from '../../../inference/served.js'
import type { RingStatus } from '../../net/pool-ring.js'
import type { GatewayModel } from './responses.js'

/** What the gateway reads of the agent to say which model it serves and whether a ring can run it. */
export interface AgentView {
  readonly selfId: string
  readonly startedAt: number
  readonly served: () => ServedModel | null
  readonly poolIds: () => string[]
  readonly ringStatus: (poolId: string) => RingStatus | undefined
}

/** The served model as /v1/models names it: its file's name, e.g. the GGUF file's stem. */
export function gatewayModel (m: ServedModel, startedAt: number): GatewayModel {
  return {
    name: path.basename(m.checkpointPath).replace(/\.(gguf|bin)$/i, ''),
    identity: m.identity.id,
    format: m.format,
    contextLength: m.format === 'gguf' ? m.config.contextLength : m.config.seqLen,
    created: Math.floor(startedAt / 1000)
  }
}

/** Why no job can run now, or undefined: a model, one pool, and its ring converged with this node in it. */
export function whyNotReady (v: AgentView): string | undefined {
  if (v.served() === null) return 'this agent is still fetching its model'
  const pools = v.poolIds()
  if (pools.length === 0) return 'this agent holds no pool certificate yet'
  if (pools.length > 1) return `this agent is in ${pools.length} pools; the API serves an agent of one pool`
  const ring = v.ringStatus(pools[0] as string)
  if (ring === undefined) return 'this agent has no ring yet'
  if (!ring.converged) return `the ring (epoch ${ring.topology.epoch}) has not converged`
  if (!ring.topology.members.some((m) => m.nodeId === v.selfId)) return 'this agent is not in its pool\'s ring'
  return undefined
}

/** What GET /health shows besides ready or not: the model and each pool's ring. */
export function healthOf (v: AgentView): object {
  const m = v.served()
  return {
    model: m === null ? null : gatewayModel(m, v.startedAt).name,
    rings: v.poolIds().map((poolId) => {
      const r = v.ringStatus(poolId)
      return { pool_id: poolId, epoch: r?.topology.epoch ?? null, members: r?.topology.members.length ?? 0, converged: r?.converged ?? false }
    })
  }
}

/** This agent's memory, for the dashboard (members' own figures are not in their heartbeats' view here). */
export function hostMemory (): { rss_mib: number, total_mib: number, free_mib: number } {
  const mib = (b: number): number => Math.round(b / 2 ** 20)
  return { rss_mib: mib(process.memoryUsage.rss()), total_mib: mib(os.totalmem()), free_mib: mib(os.freemem()) }
}
