/**
 * Probe NAT behaviour from one UDP socket: a Binding request to each STUN server (retransmitted
 * until answered or the deadline), a second request to each server's OTHER-ADDRESS port, then a
 * hairpin check (a datagram to our own mapped endpoint: does the NAT loop it back to us?). The
 * observation goes to classifyNat. Answers that match no request, or do not decode, are dropped
 * and counted.
 *
 * Exports: ProbeOptions, ProbeOutcome, probeNat, localIPv4Addresses.
 */
import crypto from 'node:crypto'
import dgram from 'node:dgram'
import os from 'node:os'
import { classifyNat, type NatObservation, type NatVerdict, type ProbeAnswer } from './classify.js'
import { decodeStun, encodeBindingRequest, txKey, type Endpoint, type StunDropReason } from './stun.js'

export interface ProbeOptions {
  /** wait this long for all answers of one round */
  readonly timeoutMs?: number
  /** resend unanswered requests this often (RFC 5389 starts at 500 ms; a LAN or one NAT answers in ms) */
  readonly retransmitMs?: number
  /** wait this long for the hairpin datagram */
  readonly hairpinMs?: number
}

export interface ProbeOutcome {
  readonly observation: NatObservation
  readonly verdict: NatVerdict
  /** datagrams dropped on the probing socket, by reason */
  readonly drops: Partial<Record<StunDropReason | 'unexpected', number>>
  /** round trip of each answered server, ms, by "host:port" */
  readonly rttMs: Record<string, number>
}

export function localIPv4Addresses (): string[] {
  return Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).filter((i) => i.family === 'IPv4').map((i) => i.address))
}

const key = (e: Endpoint): string => `${e.address}:${e.port}`

interface Pending { server: Endpoint, request: Uint8Array, sentAt: number }

export async function probeNat (servers: readonly Endpoint[], opts: ProbeOptions = {}): Promise<ProbeOutcome> {
  const timeoutMs = opts.timeoutMs ?? 1500
  const retransmitMs = opts.retransmitMs ?? 250
  const socket = dgram.createSocket('udp4')
  const drops: ProbeOutcome['drops'] = {}
  const count = (r: StunDropReason | 'unexpected'): void => { drops[r] = (drops[r] ?? 0) + 1 }
  const answers = new Map<string, ProbeAnswer>()
  const rttMs: Record<string, number> = {}
  const pending = new Map<string, Pending>()
  let hairpinTx: string | undefined
  let hairpinSeen = false
  let wake: (() => void) | undefined
  socket.on('error', () => {}) // ICMP port unreachable surfaces here on Linux: the timeout decides
  socket.on('message', (msg) => {
    const d = decodeStun(msg)
    if (!d.ok) { count(d.reason); return }
    const k = txKey(d.message.txId)
    if (d.message.kind === 'binding-request') {
      if (k === hairpinTx) { hairpinSeen = true; wake?.() } else count('unexpected')
      return
    }
    const p = pending.get(k)
    if (p === undefined) { count('unexpected'); return }
    pending.delete(k)
    answers.set(key(p.server), { server: p.server, mapped: d.message.mapped })
    rttMs[key(p.server)] = Math.round((performance.now() - p.sentAt) * 10) / 10
    // the server's second port: a second destination on the same host
    const other = d.message.other
    if (other !== undefined && other.port !== p.server.port) {
      const second = { address: p.server.address, port: other.port }
      if (!answers.has(key(second)) && ![...pending.values()].some((x) => key(x.server) === key(second))) ask(second)
    }
    if (pending.size === 0) wake?.()
  })
  const send = (p: Pending): void => { socket.send(p.request, p.server.port, p.server.address) }
  const ask = (server: Endpoint): void => {
    const tx = crypto.randomBytes(12)
    const p = { server, request: encodeBindingRequest(tx), sentAt: performance.now() }
    pending.set(txKey(tx), p)
    answers.set(key(server), { server, mapped: null })
    send(p)
  }
  const waitFor = async (ms: number, done: () => boolean): Promise<void> => {
    const deadline = performance.now() + ms
    while (!done() && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(retransmitMs, Math.max(1, deadline - performance.now())))
        wake = () => { clearTimeout(t); resolve() }
      })
      wake = undefined
      if (!done()) for (const p of pending.values()) send(p)
    }
  }
  try {
    await new Promise<void>((resolve, reject) => { socket.once('error', reject); socket.bind(0, () => { socket.off('error', reject); resolve() }) })
    for (const s of servers) ask(s)
    await waitFor(timeoutMs, () => pending.size === 0)
    let hairpin: boolean | null = null
    const mine = [...answers.values()].find((a) => a.mapped !== null)?.mapped
    if (mine !== undefined && mine !== null) {
      const tx = crypto.randomBytes(12)
      hairpinTx = txKey(tx)
      const probe = encodeBindingRequest(tx)
      socket.send(probe, mine.port, mine.address)
      await waitFor(opts.hairpinMs ?? 400, () => hairpinSeen)
      hairpin = hairpinSeen
    }
    const observation: NatObservation = { local: { port: socket.address().port, addresses: localIPv4Addresses() }, answers: [...answers.values()], hairpin }
    return { observation, verdict: classifyNat(observation), drops, rttMs }
  } finally {
    socket.close()
  }
}
