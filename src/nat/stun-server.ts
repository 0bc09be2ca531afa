/**
 * A STUN responder (Binding only) on one or more UDP ports of one host: each request is answered
 * with the address and port it came from, plus OTHER-ADDRESS naming the next port, so a client
 * learns a second destination of the same server. Anything else is dropped and counted. An answer
 * is at most 44 bytes for a request of at least 20: little to gain by spoofing requests at it.
 *
 * OTHER-ADDRESS carries the bound host, or 0.0.0.0 when bound to every interface: clients take its
 * port and keep the address they asked (probe.ts).
 *
 * Exports: StunResponderInit, StunResponderStats, StunResponder.
 */
import dgram from 'node:dgram'
import { decodeStun, encodeBindingResponse, type StunDropReason } from './stun.js'

export interface StunResponderInit {
  /** IPv4 address to bind (0.0.0.0: every interface) */
  readonly host: string
  /** UDP ports; 0 picks a free one */
  readonly ports: readonly number[]
}

export interface StunResponderStats {
  answered: number
  drops: Partial<Record<StunDropReason | 'not-a-request', number>>
}

export class StunResponder {
  private sockets: dgram.Socket[] = []
  private readonly counters: StunResponderStats = { answered: 0, drops: {} }

  constructor (private readonly init: StunResponderInit) {}

  /** The ports really bound (after start). */
  ports (): number[] { return this.sockets.map((s) => s.address().port) }

  stats (): StunResponderStats { return { answered: this.counters.answered, drops: { ...this.counters.drops } } }

  async start (): Promise<void> {
    if (this.sockets.length > 0) return
    try {
      for (const port of this.init.ports) {
        const s = dgram.createSocket('udp4')
        this.sockets.push(s)
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject)
          s.bind(port, this.init.host, () => { s.off('error', reject); resolve() })
        })
        // a socket error after bind (ICMP unreachable echoes on Linux) must not end the relay
        s.on('error', () => {})
      }
    } catch (err) {
      this.stop()
      throw err
    }
    const bound = this.ports()
    this.sockets.forEach((s, i) => {
      const next = bound[(i + 1) % bound.length] as number
      const other = bound.length > 1 ? { address: this.init.host, port: next } : undefined
      s.on('message', (msg, from) => { this.onMessage(s, msg, from, other) })
    })
  }

  private drop (reason: StunDropReason | 'not-a-request'): void {
    this.counters.drops[reason] = (this.counters.drops[reason] ?? 0) + 1
  }

  private onMessage (s: dgram.Socket, msg: Buffer, from: dgram.RemoteInfo, other: { address: string, port: number } | undefined): void {
    if (from.family !== 'IPv4') { this.drop('unsupported-type'); return }
    const d = decodeStun(msg)
    if (!d.ok) { this.drop(d.reason); return }
    if (d.message.kind !== 'binding-request') { this.drop('not-a-request'); return }
    this.counters.answered++
    s.send(encodeBindingResponse(d.message.txId, { address: from.address, port: from.port }, other), from.port, from.address)
  }

  stop (): void {
    for (const s of this.sockets.splice(0)) { try { s.close() } catch { /* closed */ } }
  }
}
