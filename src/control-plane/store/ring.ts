/**
 * Members of the HTTP ring of each pool, and the pool's ring epoch.
 * A member stays live while its heartbeats arrive within the TTL; the ring itself is computed from
 * the live set (ring-view.ts), never stored, so it cannot disagree with the membership.
 *
 * Exports: RingMemberRow, RingEpoch, RingStore.
 */
import type { Database, Statement } from 'better-sqlite3'

export interface RingMemberRow {
  readonly nodeId: string
  readonly name: string
  readonly weight: number
  readonly addresses: readonly string[]
  readonly joinedAt: number
  readonly lastHeartbeatAt: number
}

export interface RingEpoch {
  readonly epoch: number
  /** ms since the epoch of the last ring change, or undefined before the first ring */
  readonly changedAt: number | undefined
}

interface RawMember { node_id: string, name: string, weight: number, addresses: string, joined_at: number, last_heartbeat_at: number }

export class RingStore {
  private readonly upsert: Statement<[string, string, number, string, number, number]>
  private readonly beat: Statement<[number, string, string]>
  private readonly remove: Statement<[string, string]>
  private readonly live: Statement<[string, number], RawMember>
  private readonly selectEpoch: Statement<[string], { ring_epoch: number, ring_hash: string | null, ring_changed_at: number | null }>
  private readonly bumpEpoch: Statement<[number, string, string]>

  constructor (private readonly db: Database) {
    this.upsert = db.prepare(`
      INSERT INTO ring_members (pool_id, node_id, weight, addresses, joined_at, last_heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (pool_id, node_id) DO UPDATE SET
        weight = excluded.weight, addresses = excluded.addresses, last_heartbeat_at = excluded.last_heartbeat_at`)
    this.beat = db.prepare('UPDATE ring_members SET last_heartbeat_at = ? WHERE pool_id = ? AND node_id = ?')
    this.remove = db.prepare('DELETE FROM ring_members WHERE pool_id = ? AND node_id = ?')
    this.live = db.prepare(`
      SELECT m.node_id, d.name, m.weight, m.addresses, m.joined_at, m.last_heartbeat_at
      FROM ring_members m JOIN devices d USING (pool_id, node_id)
      WHERE m.pool_id = ? AND m.last_heartbeat_at >= ? ORDER BY m.node_id`)
    this.selectEpoch = db.prepare('SELECT ring_epoch, ring_hash, ring_changed_at FROM pools WHERE pool_id = ?')
    this.bumpEpoch = db.prepare('UPDATE pools SET ring_epoch = ring_epoch + 1, ring_changed_at = ?, ring_hash = ? WHERE pool_id = ?')
  }

  join (poolId: string, nodeId: string, weight: number, addresses: readonly string[], now: number): void {
    this.upsert.run(poolId, nodeId, weight, JSON.stringify(addresses), now, now)
  }

  /** false if the node is not a member (it must join again, e.g. after the TTL dropped it) */
  heartbeat (poolId: string, nodeId: string, now: number): boolean {
    return this.beat.run(now, poolId, nodeId).changes === 1
  }

  /** false if the node was not a member */
  leave (poolId: string, nodeId: string): boolean { return this.remove.run(poolId, nodeId).changes === 1 }

  /** Drop members at once (revoked ones), rather than when their heartbeats stop. */
  removeMembers (poolId: string, nodeIds: readonly string[]): void {
    for (const nodeId of nodeIds) this.remove.run(poolId, nodeId)
  }

  /** members heard from at or after `since` */
  liveMembers (poolId: string, since: number): RingMemberRow[] {
    return this.live.all(poolId, since).map((r) => ({
      nodeId: r.node_id,
      name: r.name,
      weight: r.weight,
      addresses: JSON.parse(r.addresses) as string[],
      joinedAt: r.joined_at,
      lastHeartbeatAt: r.last_heartbeat_at
    }))
  }

  /** The pool's epoch after seeing a ring with `hash`: bumped (and stored) when the ring changed. */
  observeRing (poolId: string, hash: string, now: number): RingEpoch {
    const row = this.selectEpoch.get(poolId)
    if (row === undefined) return { epoch: 0, changedAt: undefined }
    if (row.ring_hash === hash) return { epoch: row.ring_epoch, changedAt: row.ring_changed_at ?? undefined }
    this.bumpEpoch.run(now, hash, poolId)
    return { epoch: row.ring_epoch + 1, changedAt: now }
  }

  transaction<T> (fn: () => T): T { return this.db.transaction(fn).immediate() }
}
