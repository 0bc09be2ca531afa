import { assignRing, capacityWeights, RING_COLUMNS, type Capacity, type Ring, type ShardMode } from './assign.js'
import { initialEpoch, onLocalRing, onPeerEpoch, type EpochState } from './epoch.js'
import type { DecodedHeartbeat, Heartbeat, HeartbeatDropReason, HeartbeatStatus } from './heartbeat.js'
import type { LivenessConfig } from './liveness-config.js'
import { onDisconnect, onHeartbeat, onPingReply, onTick, type MemberLiveness, type NodeId, type Step } from './liveness.js'
import type { Topology, TopologyMember } from './topology.js'

/** A member with a valid, unrevoked certificate for the pool, as the certificate names it. */
export interface CertifiedMember {
  readonly nodeId: NodeId
  readonly name: string
}

export interface RingMembershipInit {
  readonly poolId: string
  readonly self: CertifiedMember
  /** This life of the agent; higher than any earlier one (see nextIncarnation). */
  readonly incarnation: number
  readonly capacity: Capacity
  /** this agent's resident memory now, MiB, for its heartbeats (default: none said) */
  readonly residentMiB?: () => number
  readonly model: string
  readonly addresses: readonly string[]
  readonly mode: ShardMode
  readonly config: LivenessConfig
}

/** What the last heartbeat of a member told us besides liveness. */
interface PeerReport {
  readonly capacity: Capacity
  readonly residentMiB: number
  readonly model: string
  readonly addresses: readonly string[]
  readonly epoch: number
  readonly ringHash: string
}

/** What became of a heartbeat: dropped (and why), or taken, and whether the ring changed. */
export interface ReceiveOutcome {
  readonly dropped?: HeartbeatDropReason
  readonly ringChanged: boolean
}

/** A member as `mesh pool-peers` / `pool-status` show it. */
export interface MemberStatus extends MemberLiveness {
  readonly name: string
  readonly inRing: boolean
}

/**
 * One member's view of its pool: who is alive, the ring that follows, and its epoch.
 * No I/O and no clock: every input carries `now` (a monotonic ms clock), and each call that can
 * change the ring returns whether it did, so the caller knows when to rewrite the topology file.
 */
export class RingMembership {
  private readonly liveness = new Map<NodeId, MemberLiveness>()
  private readonly reports = new Map<NodeId, PeerReport>()
  private certified = new Map<NodeId, CertifiedMember>()
  private epochState: EpochState = initialEpoch
  private currentRing: Ring
  private seq = 0
  private changedAtMs = 0
  private lastHash = ''
  private lastEpoch = 0
  private model: string
  /** where we listen, as our heartbeats announce it: changes when the host's addresses do (a laptop on another network) */
  private addresses: readonly string[]
  readonly drops = new Map<HeartbeatDropReason, number>()

  constructor (private readonly init: RingMembershipInit, now: number) {
    this.model = init.model
    this.addresses = init.addresses
    this.certified.set(init.self.nodeId, init.self)
    this.currentRing = assignRing(init.poolId, [], init.mode)
    this.recompute(now)
  }

  get poolId (): string { return this.init.poolId }
  get ring (): Ring { return this.currentRing }
  get epoch (): number { return this.epochState.epoch }
  /** Monotonic time of the last ring or epoch change. */
  get changedAt (): number { return this.changedAtMs }

  /** Count a heartbeat dropped before it reached us (bad bytes, bad signature…). */
  drop (reason: HeartbeatDropReason): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1)
  }

  /**
   * Replace the set of certified members (certificates learned, one revoked or expired).
   * Returns true when the ring changed.
   */
  setCertified (members: Iterable<CertifiedMember>, now: number): boolean {
    this.certified = new Map([...members].map((m) => [m.nodeId, m]))
    this.certified.set(this.init.self.nodeId, this.init.self)
    return this.recompute(now)
  }

  isCertified (nodeId: NodeId): boolean {
    return this.certified.has(nodeId)
  }

  /**
   * A heartbeat whose signature the caller verified. Pool, sender and freshness are checked
   * here; a drop is counted and the ring stays.
   */
  receive (d: DecodedHeartbeat, now: number): ReceiveOutcome {
    const reason = this.check(d)
    if (reason !== undefined) { this.drop(reason); return { dropped: reason, ringChanged: false } }
    const hb = d.heartbeat
    const step = onHeartbeat(this.liveness.get(d.nodeId), {
      nodeId: d.nodeId, incarnation: hb.incarnation, seq: hb.seq, leaving: hb.status === 'leaving'
    }, now)
    if (step.kind === 'ignore') {
      const dropped = step.reason === 'stale-incarnation' ? 'stale-incarnation' : 'replay'
      this.drop(dropped)
      return { dropped, ringChanged: false }
    }
    this.liveness.set(d.nodeId, step.member)
    this.reports.set(d.nodeId, {
      capacity: hb.capacity, residentMiB: hb.residentMiB, model: hb.model, addresses: hb.addresses, epoch: hb.epoch, ringHash: hb.ringHash
    })
    this.epochState = onPeerEpoch(this.epochState, hb.epoch, hb.ringHash)
    return { ringChanged: this.recompute(now) }
  }

  /** A member's resident memory in MiB: ours now, else what its last heartbeat said (undefined before one). */
  residentOf (nodeId: NodeId): number | undefined {
    if (nodeId === this.init.self.nodeId) return this.init.residentMiB?.()
    return this.reports.get(nodeId)?.residentMiB
  }

  /** The model id a member serves: ours for us, else what its last heartbeat announced (undefined before one). */
  modelOf (nodeId: NodeId): string | undefined {
    return nodeId === this.init.self.nodeId ? this.model : this.reports.get(nodeId)?.model
  }

  /** Serve another model (one fetched after start): our next heartbeat announces it. */
  setModel (id: string): void {
    this.model = id
  }

  /** Announce other addresses from our next heartbeat on. */
  setAddresses (addrs: readonly string[]): void {
    this.addresses = [...addrs]
  }

  /** The addresses a member last announced in its heartbeat. */
  addressesOf (nodeId: NodeId): readonly string[] {
    return this.reports.get(nodeId)?.addresses ?? []
  }

  private check (d: DecodedHeartbeat): HeartbeatDropReason | undefined {
    if (d.heartbeat.poolId !== this.init.poolId) return 'wrong-pool'
    if (d.nodeId === this.init.self.nodeId) return 'own'
    if (!this.certified.has(d.nodeId)) return 'not-member'
    return undefined
  }

  /** Run the timers. Returns true when the ring changed. */
  tick (now: number): boolean {
    for (const m of this.liveness.values()) this.apply(onTick(m, now, this.init.config))
    return this.recompute(now)
  }

  pingReply (nodeId: NodeId, now: number): boolean {
    const m = this.liveness.get(nodeId)
    if (m !== undefined) this.apply(onPingReply(m, now))
    return this.recompute(now)
  }

  disconnected (nodeId: NodeId, now: number): boolean {
    const m = this.liveness.get(nodeId)
    if (m !== undefined) this.apply(onDisconnect(m, now))
    return this.recompute(now)
  }

  private apply (step: Step): void {
    if (step.kind === 'set') this.liveness.set(step.member.nodeId, step.member)
  }

  /** Members we should ping: suspect ones. */
  suspects (): NodeId[] {
    return [...this.liveness.values()].filter((m) => m.state === 'suspect').map((m) => m.nodeId)
  }

  /** Our next heartbeat; each call takes a new sequence number. */
  nextHeartbeat (status: HeartbeatStatus, sentAtMs: number): Omit<Heartbeat, 'publicKey'> {
    this.seq++
    return {
      poolId: this.init.poolId,
      incarnation: this.init.incarnation,
      seq: this.seq,
      sentAtMs,
      status,
      epoch: this.epochState.epoch,
      ringHash: this.currentRing.hash,
      capacity: this.init.capacity,
      residentMiB: Math.max(0, Math.min(0xffffffff, Math.round(this.init.residentMiB?.() ?? 0))),
      model: this.model,
      addresses: this.addresses
    }
  }

  /** True when every other ring member last reported our ring under our epoch. */
  converged (): boolean {
    return this.currentRing.slots.every((s) => {
      if (s.nodeId === this.init.self.nodeId) return true
      const r = this.reports.get(s.nodeId)
      return r !== undefined && r.ringHash === this.currentRing.hash && r.epoch === this.epochState.epoch
    })
  }

  /** Every member we know of, certified or heard from, with its liveness. */
  members (): MemberStatus[] {
    const inRing = new Set(this.currentRing.slots.map((s) => s.nodeId))
    return [...this.liveness.values()].map((m) => ({
      ...m, name: this.certified.get(m.nodeId)?.name ?? '', inRing: inRing.has(m.nodeId)
    }))
  }

  /** The ring as the topology file records it. */
  topology (updatedAt: string): Topology {
    const members: TopologyMember[] = this.currentRing.slots.map((s) => {
      const self = s.nodeId === this.init.self.nodeId
      return {
        nodeId: s.nodeId,
        name: this.certified.get(s.nodeId)?.name ?? '',
        position: s.position,
        start: s.start,
        end: s.end,
        addresses: self ? this.addresses : (this.reports.get(s.nodeId)?.addresses ?? []),
        status: self ? 'online' : (this.liveness.get(s.nodeId)?.state === 'suspect' ? 'suspect' : 'online')
      }
    })
    return {
      version: 1,
      poolId: this.init.poolId,
      epoch: this.epochState.epoch,
      hash: this.currentRing.hash,
      shardMode: this.init.mode,
      columns: RING_COLUMNS,
      updatedAt,
      members
    }
  }

  /** Live certified members, ourselves included, in ring order. */
  private recompute (now: number): boolean {
    const live = [...this.liveness.values()].filter((m) => m.state !== 'offline' && this.certified.has(m.nodeId))
    const ids = [this.init.self.nodeId, ...live.map((m) => m.nodeId)]
    const caps = [this.init.capacity, ...live.map((m) => this.reports.get(m.nodeId)?.capacity ?? this.init.capacity)]
    const weights = capacityWeights(caps)
    const ring = assignRing(this.init.poolId, ids.map((nodeId, i) => ({ nodeId, weight: weights[i] ?? 1 })), this.init.mode)
    this.epochState = onLocalRing(this.epochState, ring.hash)
    this.currentRing = ring
    // a peer's higher epoch for our ring (adopted in receive) counts as a change too
    const changed = ring.hash !== this.lastHash || this.epochState.epoch !== this.lastEpoch
    this.lastHash = ring.hash
    this.lastEpoch = this.epochState.epoch
    if (changed) this.changedAtMs = now
    return changed
  }
}
