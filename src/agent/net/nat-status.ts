/**
 * The NAT block of `pool-status`: how this agent is reachable and how it reaches each member,
 * assembled from plain facts (the NAT detector's verdict, announced addresses, relay reservations,
 * open connections, ring liveness). Pure, so status is tested with tables.
 *
 * Exports: ConnectionFact, MemberFact, NatBlockInput, MemberPathView, NatBlock, natBlock.
 */
import type { BootstrapPeerStatus } from './bootstrap-dialer.js'
import { connectionPath, PATH_PREFERENCE, type PathKind } from './connection-path.js'
import type { NatStatus } from './nat-detector.js'
import { publicTransportAddrs } from './public-addresses.js'
import { peerIdOf, type RelayStatus } from './relays.js'

export interface ConnectionFact {
  readonly nodeId: string
  readonly remoteAddr: string
  /** the peer holds a certificate of a pool we share */
  readonly member: boolean
  readonly rttMs: number | null
  /** what libp2p says a relayed connection may still carry; null on a direct one */
  readonly limits: { readonly bytes: string | null, readonly seconds: number | null } | null
}

export interface MemberFact {
  readonly poolId: string
  readonly nodeId: string
  readonly name: string
  readonly status: 'ONLINE' | 'SUSPECT' | 'OFFLINE'
  /** ms since the last heartbeat or ping reply; null if never heard */
  readonly heardAgoMs: number | null
}

export interface NatBlockInput {
  readonly nat: NatStatus
  readonly listenAddresses: readonly string[]
  readonly relays: readonly RelayStatus[]
  readonly connections: readonly ConnectionFact[]
  readonly members: readonly MemberFact[]
  readonly bootstrap: readonly BootstrapPeerStatus[]
  /** wall clock, ms */
  readonly now: number
}

export interface MemberPathView {
  poolId: string
  nodeId: string
  name: string
  status: 'ONLINE' | 'SUSPECT' | 'OFFLINE'
  /** the connection traffic uses; null when not connected */
  path: PathKind | null
  address: string | null
  rttMs: number | null
  lastSeen: string | null
}

export interface NatBlock {
  nat: NatStatus
  reachability: { kind: 'public' | 'relayed' | 'lan-only', detail: string }
  relays: Array<RelayStatus & { limits: { bytes: string | null, seconds: number | null } | null }>
  /** open connections to members, by path */
  connections: Record<PathKind, number>
  members: MemberPathView[]
  bootstrap: BootstrapPeerStatus[]
}

const KINDS: readonly PathKind[] = ['direct-lan', 'direct-wan', 'hole-punched', 'relayed']

export function natBlock (i: NatBlockInput): NatBlock {
  const connections = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<PathKind, number>
  const best = new Map<string, ConnectionFact>()
  for (const c of i.connections) {
    if (!c.member) continue
    connections[connectionPath(c.remoteAddr)]++
    const held = best.get(c.nodeId)
    if (held === undefined || PATH_PREFERENCE[connectionPath(c.remoteAddr)] < PATH_PREFERENCE[connectionPath(held.remoteAddr)]) best.set(c.nodeId, c)
  }
  const members = i.members.map((m) => {
    const c = best.get(m.nodeId)
    return {
      poolId: m.poolId,
      nodeId: m.nodeId,
      name: m.name,
      status: m.status,
      path: c === undefined ? null : connectionPath(c.remoteAddr),
      address: c?.remoteAddr ?? null,
      rttMs: c?.rttMs ?? null,
      lastSeen: m.heardAgoMs === null ? null : new Date(i.now - m.heardAgoMs).toISOString()
    }
  })
  // the limits a relay put on our connections through it (libp2p: both directions count)
  const relays = i.relays.map((r) => {
    const id = peerIdOf(r.relay)
    const through = i.connections.find((c) => c.limits !== null && c.remoteAddr.includes(`/p2p/${id}/p2p-circuit`))
    return { ...r, limits: through?.limits ?? null }
  })
  const pub = publicTransportAddrs(i.listenAddresses)
  const reserved = i.relays.filter((r) => r.reserved)
  const reachability = pub.length > 0
    ? { kind: 'public' as const, detail: `dialable at ${pub.join(', ')}` }
    : reserved.length > 0
      ? { kind: 'relayed' as const, detail: `members outside this LAN reach it through ${reserved.map((r) => r.relay).join(', ')}` }
      : { kind: 'lan-only' as const, detail: 'no public address and no relay reservation: only members on this LAN can dial it' }
  return { nat: i.nat, reachability, relays, connections, members, bootstrap: [...i.bootstrap] }
}
