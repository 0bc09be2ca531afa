/**
 * A token bucket over an explicit clock: `capacity` at once, refilled at `perSecond`. Shared by the
 * agent's certificate decisions and the relay's join budget, so it sits below both.
 */
export class TokenBucket {
  private tokens: number
  private at: number | undefined
  constructor (private readonly capacity: number, private readonly perSecond: number) { this.tokens = capacity }
  take (now: number): boolean {
    if (this.at !== undefined) this.tokens = Math.min(this.capacity, this.tokens + (now - this.at) * this.perSecond / 1000)
    this.at = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}
