/**
 * Ring epochs that every member agrees on without a leader, Lamport-style:
 * - when our ring changes, its epoch is one more than any epoch we have seen, ours or a peer's;
 * - when a peer reports the same ring as ours under a higher epoch, we take that epoch.
 * Once the members see the same ring they settle on the highest epoch any of them gave it,
 * so their topology files match. Epochs only grow.
 */
export interface EpochState {
  readonly epoch: number
  /** Hash of the ring this epoch names ('' before the first ring). */
  readonly hash: string
  /** Highest epoch seen in any heartbeat, whatever ring it named. */
  readonly highestSeen: number
}

export const initialEpoch: EpochState = { epoch: 0, hash: '', highestSeen: 0 }

/** Our own ring was recomputed. A different ring gets a new epoch. */
export function onLocalRing (s: EpochState, hash: string): EpochState {
  if (hash === s.hash) return s
  return { ...s, epoch: Math.max(s.epoch, s.highestSeen) + 1, hash }
}

/** A peer's heartbeat said which ring it sees and under which epoch. */
export function onPeerEpoch (s: EpochState, peerEpoch: number, peerHash: string): EpochState {
  const highestSeen = Math.max(s.highestSeen, peerEpoch)
  const epoch = peerHash === s.hash && peerEpoch > s.epoch ? peerEpoch : s.epoch
  if (highestSeen === s.highestSeen && epoch === s.epoch) return s
  return { ...s, epoch, highestSeen }
}
