/**
 * The NAT block of `mesh pool-status` as text, and each member's path for `mesh pool-peers`.
 *
 * Exports: natText, peerPaths.
 */
import type { AgentStatus } from '../agent/agent.js'
import type { NatBlock } from '../agent/net/nat-status.js'
import { table } from './pool-format.js'

function ago (iso: string | null, now: number): string {
  if (iso === null) return 'never'
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`
}

function limitsText (l: { bytes: string | null, seconds: number | null } | null): string {
  if (l === null) return 'no limits on relayed connections seen yet'
  const parts = [l.bytes === null ? null : `${(Number(l.bytes) / 2 ** 20).toFixed(0)} MiB left (both directions)`, l.seconds === null ? null : `${l.seconds} s as libp2p reports it`]
  const shown = parts.filter((p): p is string => p !== null)
  return shown.length === 0 ? 'unlimited' : `relayed connections limited: ${shown.join(', ')}`
}

export function natText (s: Pick<AgentStatus, 'nat' | 'net'>, now: number): string {
  const b: NatBlock = s.nat
  const n = b.nat
  const servers = n.servers.map((x) => x.server).join(', ')
  const measured = n.measuredAt === null ? 'not measured yet' : `UDP, by STUN at ${servers || 'no server'} ${ago(n.measuredAt, now)}`
  const endpoint = n.publicEndpoint === null ? '' : `, public endpoint ${n.publicEndpoint}`
  const hairpin = n.hairpin === null ? '' : `, hairpin ${n.hairpin ? 'yes' : 'no'}`
  const lines = [
    `NAT: ${n.type}${endpoint}${hairpin} (${measured}: ${n.reason})`,
    `Reachable: ${b.reachability.kind} (${b.reachability.detail})`,
    `Addresses: ${s.net.addresses.join(' ') || 'none'}`,
    ...b.relays.map((r) => `Relay ${r.relay}: ${r.reserved ? `reservation until ${r.expiresAt ?? '?'}` : 'no reservation'}; ${limitsText(r.limits)}`),
    ...b.bootstrap.map((p) => `Bootstrap ${p.addr}: ${p.connected ? 'connected' : `not connected${p.failures > 0 ? ` (${p.failures} failed dials, last: ${p.lastError ?? '?'})` : ''}`}`),
    `Connections to members: ${Object.entries(b.connections).map(([k, v]) => `${k} ${v}`).join(', ')}`
  ]
  if (b.members.length > 0) {
    lines.push(table(['MEMBER', 'NODE ID', 'STATUS', 'PATH', 'ADDRESS', 'RTT', 'LAST SEEN'],
      b.members.map((m) => [m.name, m.nodeId, m.status, m.path ?? '-', m.address ?? '-', m.rttMs === null ? '-' : `${m.rttMs} ms`, ago(m.lastSeen, now)])))
  }
  return lines.join('\n')
}

/** Each member's path (node id → path) in one pool, from the agent's NAT block. */
export function peerPaths (b: NatBlock, poolId: string): Map<string, string> {
  return new Map(b.members.filter((m) => m.poolId === poolId).map((m) => [m.nodeId, m.path ?? '-']))
}
