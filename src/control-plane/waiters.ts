/**
 * Long polls: a request may wait (bounded) for something to change, e.g. new tokens of a job or a
 * job to claim. Writers `notify(key)`; waiters resolve on that, their timeout, or shutdown.
 *
 * Exports: Waiters.
 */
import { EventEmitter, once } from 'node:events'

export class Waiters {
  private readonly events = new EventEmitter()
  private readonly closing = new AbortController()

  constructor () {
    // one listener per waiting request: bounded by the connection limit, not a leak
    this.events.setMaxListeners(0)
  }

  notify (key: string): void { this.events.emit(key) }

  /** Resolves when `key` is notified, after `ms`, or when the server closes; never rejects. */
  async wait (key: string, ms: number): Promise<void> {
    if (ms <= 0 || this.closing.signal.aborted) return
    try {
      await once(this.events, key, { signal: AbortSignal.any([AbortSignal.timeout(ms), this.closing.signal]) })
    } catch {
      // timed out or closing: the caller answers with what it has
    }
  }

  close (): void { this.closing.abort() }
}
