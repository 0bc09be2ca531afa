/**
 * Cuts generated text at the first stop string, across token boundaries. Text that could be the
 * start of a stop string is held back until the next piece shows whether it is, so a stop string
 * never reaches the client, not even in part.
 */
export class StopFilter {
  private held = ''
  private done = false
  constructor (private readonly stops: readonly string[]) {}

  get stopped (): boolean { return this.done }

  /** The text that is safe to send now; after a stop, nothing more. */
  push (piece: string): string {
    if (this.done) return ''
    const t = this.held + piece
    let cut = -1
    for (const s of this.stops) {
      const at = t.indexOf(s)
      if (at >= 0 && (cut < 0 || at < cut)) cut = at
    }
    if (cut >= 0) { this.done = true; this.held = ''; return t.slice(0, cut) }
    const keep = this.heldTail(t)
    this.held = t.slice(t.length - keep)
    return t.slice(0, t.length - keep)
  }

  /** At the end of the generation: what was held back (no stop string came). */
  flush (): string {
    const t = this.held
    this.held = ''
    return this.done ? '' : t
  }

  /** the longest end of `t` that a stop string starts with */
  private heldTail (t: string): number {
    let keep = 0
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, t.length); n > keep; n--) {
        if (t.endsWith(s.slice(0, n))) { keep = n; break }
      }
    }
    return keep
  }
}
