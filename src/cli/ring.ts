import fs from 'node:fs'
import type { Argv } from 'yargs'
import { callAgent } from '../agent/api/client.js'
import { AgentNotRunningError } from '../agent/errors.js'
import type { RingReport } from '../agent/net/pool-ring.js'
import { listPoolRecords, resolvePoolId } from '../pool/index.js'
import { readTopology, topologyPath } from '../ring/topology.js'
import type { MeshCommand } from './commands.js'
import type { GlobalArgs } from '../process/io.js'
import { formatRingReports } from './ring-format.js'

interface RingStatusArgs extends GlobalArgs { 'pool-id'?: string }

/**
 * The rings from the topology files, for when the agent is not running: what it last agreed.
 * A corrupt file is reported (CorruptFileError names it), never skipped in silence.
 */
function ringsFromFiles (home: string, poolId: string | undefined, now: number): RingReport[] {
  return listPoolRecords(home)
    .filter((r) => poolId === undefined || r.poolId === poolId)
    .flatMap((r) => {
      const topology = readTopology(home, r.poolId)
      if (topology === undefined) return []
      const ageMs = now - fs.statSync(topologyPath(home, r.poolId)).mtimeMs
      return [{ poolId: r.poolId, poolName: r.name, source: 'file' as const, topology, converged: null, ageMs }]
    })
}

export const ringStatusCommand: MeshCommand = (io) => ({
  command: 'ring-status',
  describe: 'each pool\'s ring: epoch, members in ring order with their column ranges, converged or not',
  builder: (y: Argv<GlobalArgs>) => y
    .option('pool-id', { type: 'string', describe: 'only this pool (Pool ID or a unique prefix of at least 16 hex digits)', defaultDescription: 'every pool' }),
  handler: async (argv) => {
    const a = argv as unknown as RingStatusArgs
    const poolId = a['pool-id'] === undefined ? undefined : resolvePoolId(a.home, a['pool-id'])
    let reports: RingReport[]
    let note = ''
    try {
      reports = await callAgent<RingReport[]>(a.home, 'GET', `/v1/ring${poolId === undefined ? '' : `?pool=${poolId}`}`)
    } catch (err) {
      if (!(err instanceof AgentNotRunningError)) throw err
      reports = ringsFromFiles(a.home, poolId, Date.now())
      note = 'the agent is not running (start it with `mesh start`); showing the last ring it wrote\n\n'
    }
    io.out(a.json ? JSON.stringify(reports) : note + formatRingReports(reports))
  }
})
