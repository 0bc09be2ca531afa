import type { PrivateKey } from '@libp2p/interface'
import type { ShardUnits } from '../../inference/shard.js'
import { CorruptFileError, StateWriteError } from '../../atomic-file.js'
import { decodeHeartbeat, encodeHeartbeat, verifyHeartbeatSignature, type HeartbeatStatus } from '../../ring/heartbeat.js'
import { RingMembership, type RingMembershipInit } from '../../ring/membership.js'
import { readTopology, topologyContent, writeTopology, type Topology } from '../../ring/topology.js'
import type { Logger } from '../log.js'

export interface PoolRingInit extends RingMembershipInit {
  readonly home: string
  readonly privateKey: PrivateKey
  readonly log: Logger
  /** the ring, its epoch or a member's status changed (called after the file is written) */
  readonly onChanged?: () => void
}

/** Live data of one pool's ring, for `mesh ring-status` and `mesh pool-status`. */
export interface RingStatus {
  readonly topology: Topology
  readonly converged: boolean
  /** ms since the ring last changed */
  readonly ageMs: number
  readonly drops: Record<string, number>
  /**
   * Per member: our wall clock minus the send time in its last accepted heartbeat, in ms (a LAN's
   * delivery delay is noise at this scale): `mesh doctor` warns about clocks seconds apart.
   */
  readonly clockSkewMs: Record<string, number>
}

/** One pool's ring as `mesh ring-status` shows it: live from the agent, or the last file written. */
export interface RingReport {
  readonly poolId: string
  readonly poolName: string
  /** 'live': from the running agent; 'file': the agent is not running, this is the last topology written */
  readonly source: 'live' | 'file'
  readonly topology: Topology
  /** every ring member reports the same ring and epoch; null when not known (agent not running) */
  readonly converged: boolean | null
  /** ms since the ring last changed */
  readonly ageMs: number
  /** heartbeats dropped, by reason (live only) */
  readonly drops?: Record<string, number>
  /** live only: the model this agent serves, and what each ring member announced (null: nothing yet) */
  readonly models?: { readonly self: string, readonly members: Readonly<Record<string, string | null>> }
  /** live only: the units of this agent's model each member computes for its columns (absent while the model is fetched) */
  readonly units?: Readonly<Record<string, ShardUnits>>
  /** live only: each member's resident memory in MiB, from its heartbeats (ours now; null: nothing yet) */
  readonly residentMiB?: Readonly<Record<string, number | null>>
  /** live only: each member's clock skew from its heartbeats (RingStatus.clockSkewMs) */
  readonly clockSkewMs?: Readonly<Record<string, number>>
}

/** gossip topic of a pool's ring */
export const ringTopic = (poolId: string): string => `/mesh/pool/${poolId}/ring/1`

/**
 * One pool's ring on this member: the membership view, our heartbeats, and the topology file.
 * Network-free: heartbeats come in as bytes and go out through the `publish` the caller passes.
 */
export class PoolRing {
  readonly membership: RingMembership
  private written = ''
  private inRing: string[] = []
  private updatedAt = new Date().toISOString()
  private readonly skew = new Map<string, number>()

  constructor (private readonly init: PoolRingInit, now: number) {
    this.membership = new RingMembership(init, now)
  }

  /**
   * Untrusted heartbeat bytes from the pool topic: decode, check the signature, then the
   * membership view. Drops are counted by reason. The verdict tells gossip whether to pass the
   * message on: forged or foreign ones are rejected (and their sender's score drops), late
   * duplicates only ignored.
   */
  async receive (bytes: Uint8Array, now: () => number): Promise<'accept' | 'ignore' | 'reject'> {
    const d = decodeHeartbeat(bytes)
    if (!d.ok) { this.membership.drop(d.reason); return 'reject' }
    if (!this.membership.isCertified(d.value.nodeId)) { this.membership.drop('not-member'); return 'reject' }
    if (!(await verifyHeartbeatSignature(d.value))) { this.membership.drop('bad-signature'); return 'reject' }
    const outcome = this.membership.receive(d.value, now())
    // the wall clock, not `now` (monotonic): skew is about the two devices' clocks
    if (outcome.dropped === undefined) this.skew.set(d.value.nodeId, Date.now() - d.value.heartbeat.sentAtMs)
    this.save()
    if (outcome.dropped === undefined) return 'accept'
    return outcome.dropped === 'replay' || outcome.dropped === 'stale-incarnation' ? 'ignore' : 'reject'
  }

  async heartbeat (status: HeartbeatStatus): Promise<Uint8Array> {
    const hb = this.membership.nextHeartbeat(status, Date.now())
    return await encodeHeartbeat({ ...hb, publicKey: this.init.privateKey.publicKey.raw }, this.init.privateKey)
  }

  /** Write the topology file when what it says changed. */
  save (): void {
    const t = this.membership.topology(this.updatedAt)
    if (topologyContent(t) === this.written) return
    this.updatedAt = new Date().toISOString()
    this.logMembershipChange(t)
    this.write('ring changed')
    this.init.onChanged?.()
  }

  /** Who joined and who left the ring, and why: the first thing to look for when a ring shrinks. */
  private logMembershipChange (next: Topology): void {
    const now = new Set(next.members.map((m) => m.nodeId))
    const before = new Set(this.inRing)
    const status = new Map(this.membership.members().map((m) => [m.nodeId, m]))
    for (const id of now) if (!before.has(id)) this.init.log.info({ poolId: next.poolId, nodeId: id, epoch: next.epoch }, 'member joined the ring')
    for (const id of before) {
      if (now.has(id)) continue
      const m = status.get(id)
      const cause = m?.state === 'offline' ? m.offlineCause : 'certificate no longer valid'
      this.init.log.info({ poolId: next.poolId, nodeId: id, epoch: next.epoch, cause }, 'member left the ring')
    }
    this.inRing = [...now]
  }

  /** Rewrite the topology file if someone removed, edited or corrupted it (checked on the timer). */
  checkFile (): void {
    let onDisk: Topology | undefined
    try {
      onDisk = readTopology(this.init.home, this.init.poolId)
    } catch (err) {
      if (!(err instanceof CorruptFileError)) throw err
    }
    if (onDisk === undefined || topologyContent(onDisk) !== this.written || onDisk.updatedAt !== this.updatedAt) {
      this.init.log.warn({ poolId: this.init.poolId }, 'ring topology file was missing, edited or corrupt; rewrote it from the live view')
      this.write('rewrite')
    }
  }

  private write (why: string): void {
    const t = this.membership.topology(this.updatedAt)
    try {
      writeTopology(this.init.home, t)
      this.written = topologyContent(t)
      this.init.log.debug({ poolId: t.poolId, epoch: t.epoch, hash: t.hash, members: t.members.length, why }, 'ring topology written')
    } catch (err) {
      // a full disk must not stop the ring; the next change tries again
      if (!(err instanceof StateWriteError)) throw err
      this.init.log.error({ err: err.message }, 'cannot write the ring topology file')
    }
  }

  status (now: number): RingStatus {
    return {
      topology: this.membership.topology(this.updatedAt),
      converged: this.membership.converged(),
      ageMs: now - this.membership.changedAt,
      drops: Object.fromEntries(this.membership.drops),
      clockSkewMs: Object.fromEntries(this.skew)
    }
  }
}
