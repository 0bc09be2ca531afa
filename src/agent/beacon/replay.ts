/**
 * Replay and duplicate detection per sender, like an IPsec anti-replay window: the highest
 * sequence number seen plus which of the WINDOW numbers below it were seen. A packet delivered twice
 * (several interfaces, macOS) is a duplicate; one older than the window is a replay; one inside the
 * window but unseen is a late arrival and is fine.
 *
 * check() is pure; commit() records a packet and is called only after its signature verified, so a
 * forged packet with a huge sequence number cannot lock a real sender out.
 */
export type ReplayVerdict = 'fresh' | 'duplicate' | 'replay'

const WINDOW = 64
/** Bound on remembered senders; only verified members get in, so this is far above any real pool. */
const MAX_SENDERS = 4096

interface SenderWindow { highest: number, seen: Set<number> }

export class ReplayGuard {
  private readonly senders = new Map<string, SenderWindow>()

  check (sender: string, seq: number): ReplayVerdict {
    const w = this.senders.get(sender)
    if (w === undefined || seq > w.highest) return 'fresh'
    if (seq <= w.highest - WINDOW) return 'replay'
    return w.seen.has(seq) ? 'duplicate' : 'fresh'
  }

  commit (sender: string, seq: number): void {
    let w = this.senders.get(sender)
    if (w === undefined) {
      if (this.senders.size >= MAX_SENDERS) {
        const oldest = this.senders.keys().next().value
        if (oldest !== undefined) this.senders.delete(oldest)
      }
      w = { highest: seq, seen: new Set() }
      this.senders.set(sender, w)
    }
    w.seen.add(seq)
    if (seq > w.highest) {
      w.highest = seq
      for (const s of w.seen) if (s <= seq - WINDOW) w.seen.delete(s)
    }
  }
}
