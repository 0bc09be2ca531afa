import { QueueFullError } from './errors.js'

/**
 * The gateway's requests, one ring job at a time: a job uses every member's cores, so two at once
 * only slow each other, and one at a time keeps each request's state and usage its own. At most
 * `maxWaiting` wait; beyond that a request is refused at once (429) rather than left to time out.
 * A request whose client leaves while it waits gives up its place.
 */
export class JobQueue {
  private running = false
  private readonly waiting: Array<{ go: () => void, signal: AbortSignal }> = []
  constructor (private readonly maxWaiting: number, private readonly retryAfterS = 1) {}

  get depth (): { running: boolean, waiting: number } { return { running: this.running, waiting: this.waiting.length } }

  /**
   * Admit a request now (QueueFullError when full); the function returned runs `job` in the
   * request's turn, and rejects with the signal's reason if the client leaves before it.
   */
  admit (signal: AbortSignal): <T>(job: () => Promise<T>) => Promise<T> {
    if (this.running && this.waiting.length >= this.maxWaiting) throw new QueueFullError(this.retryAfterS, this.waiting.length)
    let turn: Promise<void>
    if (!this.running) {
      this.running = true
      turn = Promise.resolve()
    } else {
      turn = new Promise<void>((resolve, reject) => {
        const entry = { go: resolve, signal }
        this.waiting.push(entry)
        signal.addEventListener('abort', () => {
          const i = this.waiting.indexOf(entry)
          if (i >= 0) { this.waiting.splice(i, 1); reject(signal.reason) }
        }, { once: true })
      })
    }
    return async (job) => {
      await turn
      try { return await job() } finally { this.release() }
    }
  }

  /** The running request is done: the next in line goes. */
  private release (): void {
    const next = this.waiting.shift()
    if (next === undefined) { this.running = false; return }
    next.go()
  }
}
