/**
 * Timers of ring liveness, in one place. Heartbeats arrive by gossip about once per
 * `heartbeatIntervalMs`; a member that stays silent is first SUSPECT, then OFFLINE.
 * Silence is measured on the receiver's own monotonic clock from the last heartbeat (or ping
 * reply) it got, so members never compare wall clocks and a ±20 s skew changes nothing.
 */
export interface LivenessConfig {
  /** How often each member publishes its signed heartbeat on the pool topic. */
  readonly heartbeatIntervalMs: number
  /** Silence after which a member is SUSPECT: it stays in the ring, and we ping it directly. */
  readonly suspectAfterMs: number
  /** Silence after which a member is OFFLINE and leaves the ring. */
  readonly offlineAfterMs: number
  /** How often the timers are checked; adds at most this much to detection time. */
  readonly tickIntervalMs: number
  /** A ping to a suspect member that takes longer than this counts as lost. */
  readonly pingTimeoutMs: number
}

/**
 * LAN defaults. Detection time of a dead member is at most offlineAfterMs + tickIntervalMs
 * after its last heartbeat, i.e. within ~6 s of its death on every other member.
 */
export function lanDefaults (): LivenessConfig {
  return {
    // one heartbeat a second: ~200 bytes per member per second, negligible on a LAN
    heartbeatIntervalMs: 1000,
    // two missed heartbeats and a half: one lost packet (1 s gap) never makes a member suspect
    suspectAfterMs: 2500,
    // five missed heartbeats, and pings while suspect: at 5 % loss the chance of losing
    // five heartbeats and the pings in a row is far below once a day
    offlineAfterMs: 5000,
    // timer resolution; four checks per heartbeat keeps detection close to offlineAfterMs
    tickIntervalMs: 250,
    // LAN round trips are a few ms; a second is a generous bound that still fits inside the
    // suspect window, so several pings are tried before a member goes offline
    pingTimeoutMs: 1000
  }
}

/**
 * Faster timers for tests on 127.0.0.1, derived from the LAN defaults by shortening the periods.
 * Nothing is lost on loopback, but a test machine can stall a process for a second or more
 * (several suites share two cores), so OFFLINE still needs a few seconds of silence.
 */
export function loopbackTestConfig (): LivenessConfig {
  return {
    ...lanDefaults(),
    heartbeatIntervalMs: 250,
    suspectAfterMs: 1500,
    offlineAfterMs: 3000,
    tickIntervalMs: 100,
    pingTimeoutMs: 500
  }
}
