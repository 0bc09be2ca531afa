import path from 'node:path'
import { z } from 'zod'
import { CorruptFileError, readJsonFile, writeJsonAtomic } from '../atomic-file.js'
import { RING_COLUMNS, type ShardMode } from './assign.js'

/** One ring member as the topology file and `mesh ring-status` show it. */
export interface TopologyMember {
  readonly nodeId: string
  readonly name: string
  readonly position: number
  /** Column range [start, end). */
  readonly start: number
  readonly end: number
  readonly addresses: readonly string[]
  readonly status: 'online' | 'suspect'
}

/** The ring a member sees, as written to MESH_HOME/ring_topology_<pool_id>.json. */
export interface Topology {
  readonly version: 1
  readonly poolId: string
  readonly epoch: number
  readonly hash: string
  readonly shardMode: ShardMode
  readonly columns: number
  /** ISO time of the last change; the only field that differs between converged members. */
  readonly updatedAt: string
  readonly members: readonly TopologyMember[]
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/)
const topologySchema = z.strictObject({
  version: z.literal(1),
  poolId: hex64,
  epoch: z.number().int().nonnegative(),
  hash: hex64,
  shardMode: z.enum(['even', 'capacity']),
  columns: z.literal(RING_COLUMNS),
  updatedAt: z.iso.datetime(),
  members: z.array(z.strictObject({
    nodeId: z.string().min(1),
    name: z.string(),
    position: z.number().int().nonnegative(),
    start: z.number().int().nonnegative(),
    end: z.number().int().positive(),
    addresses: z.array(z.string()),
    status: z.enum(['online', 'suspect'])
  }))
})

export function topologyPath (home: string, poolId: string): string {
  return path.join(home, `ring_topology_${poolId}.json`)
}

/** Write atomically: readers see the old ring or the new one, never half of each. */
export function writeTopology (home: string, t: Topology): void {
  writeJsonAtomic(topologyPath(home, t.poolId), t)
}

/**
 * Read a topology file: undefined when absent; CorruptFileError (naming the file) when it is not
 * a topology this version wrote, e.g. after a hand edit.
 */
export function readTopology (home: string, poolId: string): Topology | undefined {
  const file = topologyPath(home, poolId)
  const raw = readJsonFile(file)
  if (raw === undefined) return undefined
  const parsed = topologySchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new CorruptFileError(file, `${issue?.path.join('.') || 'top level'}: ${issue?.message ?? 'invalid'}`)
  }
  if (parsed.data.poolId !== poolId) throw new CorruptFileError(file, `it names pool ${parsed.data.poolId}`)
  return parsed.data
}

/** The file's content apart from its timestamp: equal on members that see the same ring. */
export function topologyContent (t: Topology): string {
  return JSON.stringify({ ...t, updatedAt: undefined })
}
