import type { LivenessConfig } from './liveness-config.js'

/** A member's libp2p PeerId string ("12D3KooW…"): the one node id used everywhere. */
export type NodeId = string

export type LivenessState = 'online' | 'suspect' | 'offline'

/** Why a member went offline: it said goodbye, or it went silent. */
export type OfflineCause = 'left' | 'timeout'

/** What one member knows about another's health. Times are the observer's monotonic clock (ms). */
export interface MemberLiveness {
  readonly nodeId: NodeId
  /** The member's own life counter: a restart starts a higher one. */
  readonly incarnation: number
  /** Highest heartbeat sequence number seen in this incarnation. */
  readonly seq: number
  readonly state: LivenessState
  readonly offlineCause?: OfflineCause
  /** When we last had a sign of life: a fresh heartbeat or a ping reply. */
  readonly lastHeardMs: number
  /** When `state` last changed. */
  readonly sinceMs: number
}

/** The liveness facts a verified heartbeat carries. */
export interface HeartbeatClaim {
  readonly nodeId: NodeId
  readonly incarnation: number
  readonly seq: number
  readonly leaving: boolean
}

export type IgnoreReason = 'stale-incarnation' | 'replay' | 'offline' | 'unchanged'

/** The outcome of a transition: the caller stores `member`, or counts `reason`. */
export type Step =
  | { readonly kind: 'set', readonly member: MemberLiveness }
  | { readonly kind: 'ignore', readonly reason: IgnoreReason }

const ignore = (reason: IgnoreReason): Step => ({ kind: 'ignore', reason })
const set = (member: MemberLiveness): Step => ({ kind: 'set', member })

function withState (m: MemberLiveness, state: LivenessState, now: number, cause?: OfflineCause): MemberLiveness {
  return { ...m, state, sinceMs: m.state === state ? m.sinceMs : now, offlineCause: state === 'offline' ? cause : undefined }
}

/**
 * A heartbeat signed by the member itself arrived (first-hand proof of life, whoever relayed it).
 * The caller has already checked its signature, pool and certificate, and that it is not our own.
 */
export function onHeartbeat (prev: MemberLiveness | undefined, hb: HeartbeatClaim, now: number): Step {
  const fresh: MemberLiveness = {
    nodeId: hb.nodeId, incarnation: hb.incarnation, seq: hb.seq, state: 'online', lastHeardMs: now, sinceMs: now
  }
  // first time we hear of it: a goodbye from a stranger only records that it is gone
  if (prev === undefined) return set(hb.leaving ? withState(fresh, 'offline', now, 'left') : fresh)
  // an older life of the member: a delayed or replayed message
  if (hb.incarnation < prev.incarnation) return ignore('stale-incarnation')
  // same life, not newer than what we have: duplicate delivery or replay
  if (hb.incarnation === prev.incarnation && hb.seq <= prev.seq) return ignore('replay')
  const next: MemberLiveness = { ...prev, incarnation: hb.incarnation, seq: hb.seq, lastHeardMs: now }
  // a graceful stop: drop it at once instead of waiting for the timers
  if (hb.leaving) return set(withState(next, 'offline', now, 'left'))
  // a newer heartbeat: alive, whatever we thought (a timed-out member that comes back, a restart)
  return set(withState(next, 'online', now))
}

/**
 * A direct ping answered: the member's node is up even if its heartbeats were lost on the way.
 * It cannot bring back an offline member; only a fresh signed heartbeat does that.
 */
export function onPingReply (prev: MemberLiveness, now: number): Step {
  if (prev.state === 'offline') return ignore('offline')
  return set(withState({ ...prev, lastHeardMs: Math.max(prev.lastHeardMs, now) }, 'online', now))
}

/**
 * Our connection to the member closed. That alone is not death (gossip may still reach us
 * through others), so it only makes an online member suspect, which starts direct pings.
 */
export function onDisconnect (prev: MemberLiveness, now: number): Step {
  if (prev.state !== 'online') return ignore('unchanged')
  return set(withState(prev, 'suspect', now))
}

/** The timers: silence makes a member suspect, longer silence makes it offline. */
export function onTick (prev: MemberLiveness, now: number, cfg: LivenessConfig): Step {
  if (prev.state === 'offline') return ignore('offline')
  const silentMs = now - prev.lastHeardMs
  if (silentMs >= cfg.offlineAfterMs) return set(withState(prev, 'offline', now, 'timeout'))
  if (silentMs >= cfg.suspectAfterMs && prev.state === 'online') return set(withState(prev, 'suspect', now))
  return ignore('unchanged')
}
