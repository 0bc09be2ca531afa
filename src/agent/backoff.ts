/**
 * Exponential backoff with jitter, as plain data and one pure function: certificate requests and
 * bootstrap dials retry on it.
 *
 * Exports: Backoff, backoffDelayMs.
 */
export interface Backoff {
  /** the first retry waits this long */
  readonly initialMs: number
  /** each further retry waits this many times longer… */
  readonly factor: number
  /** …up to this */
  readonly maxMs: number
  /** ± this share of the delay, so many devices do not retry in step */
  readonly jitter: number
}

/** The n-th retry delay (n from 0); `random` in [0, 1). */
export function backoffDelayMs (n: number, b: Backoff, random: number): number {
  const base = Math.min(b.maxMs, b.initialMs * b.factor ** n)
  return Math.round(base * (1 + b.jitter * (2 * random - 1)))
}
