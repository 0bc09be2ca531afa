/**
 * The agent's side of mesh-relay: keep a connection and a circuit relay v2 reservation on every
 * configured relay, advertise the relayed address of this node through each reserved relay, and
 * give the relayed address of any member so a member we cannot dial directly is reached through it.
 *
 * libp2p's own "listen on <relay>/p2p-circuit" makes the reservation once, inside start(): a relay
 * that is down at start-up would stall or fail the agent and never be retried, and a relay restart
 * would lose the reservation for good. Here reservations are (re)made by `ensure()`, which the pool
 * network calls after start and on its redial timer.
 *
 * Relays come from `--relay` (and config), and from the relayed addresses a pool's admin announces
 * in its signed beacons (relaysIn): a member told nothing about the relay still reserves a slot there.
 *
 * Exports: parseRelayAddress, relayedAddress, relaysIn, ReservationStoreHandle, RelayReservations.
 */
import type { PeerId } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { UsageError } from '../../errors.js'
import type { Logger } from '../log.js'

/** A relay multiaddr as mesh-relay prints it: transport address + /p2p/RELAY_ID, no /p2p-circuit. */
export function parseRelayAddress (text: string): string {
  let ma: Multiaddr
  try { ma = multiaddr(text.trim()) } catch {
    throw new UsageError(`relay address ${JSON.stringify(text)} is not a multiaddr; use what mesh-relay prints (e.g. /ip4/192.168.1.10/tcp/4001/p2p/12D3Koo…)`)
  }
  const s = ma.toString()
  if (s.includes('/p2p-circuit')) throw new UsageError(`relay address ${s} is a relayed address; give the relay's own address (without /p2p-circuit)`)
  if (!/\/p2p\/[1-9A-HJ-NP-Za-km-z]+$/.test(s)) throw new UsageError(`relay address ${s} lacks the relay's /p2p/ID at the end; use what mesh-relay prints`)
  return s
}

/** The peer id a multiaddr ends with (`…/p2p/ID`): a relay's, a bootstrap peer's. */
export function peerIdOf (addr: string): string {
  return addr.slice(addr.lastIndexOf('/p2p/') + 5)
}

/** The address through which `relayAddr` reaches `nodeId` (works once nodeId holds a reservation there). */
export function relayedAddress (relayAddr: string, nodeId: string): string {
  return `${relayAddr}/p2p-circuit/p2p/${nodeId}`
}

/** The relays behind relayed addresses (…/p2p/RELAY/p2p-circuit/p2p/NODE), as parseRelayAddress gives them; others are skipped. */
export function relaysIn (addrs: readonly string[]): string[] {
  const found = new Set<string>()
  for (const a of addrs) {
    const at = a.indexOf('/p2p-circuit')
    if (at <= 0) continue
    try { found.add(parseRelayAddress(a.slice(0, at))) } catch { /* not a relay address we can use */ }
  }
  return [...found]
}

/** The part of @libp2p/circuit-relay-v2's transport we use: its reservation store. */
export interface ReservationStoreHandle {
  addRelay: (peerId: PeerId, type: 'configured') => Promise<unknown>
  hasReservation: (peerId: PeerId) => boolean
  /** the relay's answer: its expiry in seconds since the epoch */
  getReservation: (peerId: PeerId) => { expire: bigint } | undefined
}

/** A relay as status shows it. */
export interface RelayStatus { relay: string, reserved: boolean, expiresAt: string | null }

export interface RelayNode {
  dial: (addr: Multiaddr, options: { signal: AbortSignal }) => Promise<{ remotePeer: PeerId }>
}

export class RelayReservations {
  private readonly inFlight = new Set<string>()
  /** each relay's PeerId object, once connected (the reservation store is keyed by it) */
  private readonly known = new Map<string, PeerId>()
  /** relays whose last attempt failed: said once per failure streak, not every redial */
  private readonly failing = new Set<string>()

  private readonly list: string[]

  constructor (
    relays: readonly string[],
    private readonly store: () => ReservationStoreHandle | undefined,
    private readonly log: Logger,
    private readonly timeoutMs: number,
    /** a reservation was made: our relayed address is new */
    private readonly onReserved: () => void = () => {}
  ) {
    this.list = [...relays]
  }

  get relays (): readonly string[] { return this.list }

  /** Use another relay from now on (reserved at the next ensure); false if it is known already. */
  add (relayAddr: string): boolean {
    if (this.list.includes(relayAddr)) return false
    this.list.push(relayAddr)
    return true
  }

  /** Whether a peer is one of our relays: it holds no certificate, and must not be refused for that. */
  isRelay (nodeId: string): boolean {
    return this.relays.some((r) => peerIdOf(r) === nodeId)
  }

  /** Relays holding a reservation for us right now. */
  reserved (): string[] {
    const store = this.store()
    if (store === undefined) return []
    return this.relays.filter((r) => {
      const peer = this.known.get(peerIdOf(r))
      return peer !== undefined && store.hasReservation(peer)
    })
  }

  /** Each relay, whether it holds a reservation for us, and until when (the relay renews it while we stay). */
  status (): RelayStatus[] {
    const store = this.store()
    return this.relays.map((relay) => {
      const peer = this.known.get(peerIdOf(relay))
      const reservation = peer === undefined || store === undefined || !store.hasReservation(peer) ? undefined : store.getReservation(peer)
      return { relay, reserved: reservation !== undefined, expiresAt: reservation === undefined ? null : new Date(Number(reservation.expire) * 1000).toISOString() }
    })
  }

  /** Make a reservation on every relay that has none (connecting first); failures are retried next time. */
  async ensure (node: RelayNode): Promise<void> {
    const store = this.store()
    if (store === undefined) return
    await Promise.all(this.relays.map(async (addr) => {
      const id = peerIdOf(addr)
      const peer = this.known.get(id)
      if (this.inFlight.has(addr) || (peer !== undefined && store.hasReservation(peer))) return
      this.inFlight.add(addr)
      try {
        const conn = await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(this.timeoutMs) })
        this.known.set(id, conn.remotePeer)
        await store.addRelay(conn.remotePeer, 'configured')
        this.failing.delete(addr)
        this.log.info({ relay: addr }, 'relay reservation made')
        this.onReserved()
      } catch (err) {
        if (!this.failing.has(addr)) this.log.warn({ relay: addr, err: String(err) }, 'no reservation on the relay yet; retrying')
        this.failing.add(addr)
      } finally {
        this.inFlight.delete(addr)
      }
    }))
  }
}
