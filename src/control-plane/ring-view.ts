/**
 * The ring the control plane reports for a pool: the ring module's pure assignment over the members
 * whose heartbeats are fresh, shaped like the topology file agents write, so an agent can compare it
 * with the ring it agrees by gossip (same fields and hash, plus when each member was last heard).
 *
 * Exports: RingView, RingViewMember, ringView.
 */
import { RING_COLUMNS, assignRing, type ShardMode } from '../ring/assign.js'
import type { Topology, TopologyMember } from '../ring/topology.js'
import type { RingEpoch, RingMemberRow } from './store/ring.js'

/** A topology member, plus when the control plane last heard from it. */
export interface RingViewMember extends TopologyMember {
  readonly status: 'online'
  readonly lastHeartbeatAt: string
}

/** The topology file's shape (ring/topology.ts): equal hashes mean the same ring. */
export interface RingView extends Topology {
  readonly members: readonly RingViewMember[]
}

/** The ring's hash comes first so the caller can bump the epoch before building the view. */
export function ringView (poolId: string, live: readonly RingMemberRow[], mode: ShardMode, epochOf: (hash: string) => RingEpoch, now: number): RingView {
  const ring = assignRing(poolId, live.map((m) => ({ nodeId: m.nodeId, weight: m.weight })), mode)
  const { epoch, changedAt } = epochOf(ring.hash)
  const byId = new Map(live.map((m) => [m.nodeId, m]))
  return {
    version: 1,
    poolId,
    epoch,
    hash: ring.hash,
    shardMode: mode,
    columns: RING_COLUMNS,
    updatedAt: new Date(changedAt ?? now).toISOString(),
    members: ring.slots.map((s) => {
      const m = byId.get(s.nodeId) as RingMemberRow
      return {
        nodeId: s.nodeId,
        name: m.name,
        position: s.position,
        start: s.start,
        end: s.end,
        addresses: m.addresses,
        status: 'online',
        lastHeartbeatAt: new Date(m.lastHeartbeatAt).toISOString()
      }
    })
  }
}
