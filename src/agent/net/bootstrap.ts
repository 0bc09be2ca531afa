/**
 * Bootstrap entries (--bootstrap, MESH_BOOTSTRAP, agent.json `bootstrap`) come in three shapes:
 *   HOST[:PORT]              a beacon target: announces go there by unicast UDP (networks without multicast)
 *   PEER_ID@HOST:PORT        a libp2p peer: dialled over TCP, and it must prove PEER_ID (Noise)
 *   /ip4/…/tcp/…/p2p/PEER_ID a libp2p peer as a multiaddr, relayed ones too (…/p2p/RELAY/p2p-circuit/p2p/PEER)
 * A libp2p peer is dialled and kept connected (reconnected with backoff); a member that is not yet
 * in the pool asks it for its certificate over libp2p (cert-request.ts).
 *
 * Exports: BootstrapEntry, parseBootstrapEntry, splitBootstrap.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import net from 'node:net'
import { UsageError } from '../../errors.js'

export type BootstrapEntry =
  | { readonly kind: 'beacon', readonly host: string, readonly port: number }
  | { readonly kind: 'peer', readonly addr: string, readonly peerId: string }

const HOST = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*$/

function checkPeerId (text: string, entry: string): string {
  try { return peerIdFromString(text).toString() } catch {
    throw new UsageError(`bootstrap peer ${JSON.stringify(entry)}: ${JSON.stringify(text)} is not a peer id (the node id mesh init prints, 12D3KooW…)`)
  }
}

function peerAt (entry: string): BootstrapEntry {
  const at = entry.indexOf('@')
  const id = checkPeerId(entry.slice(0, at), entry)
  const m = /^([^:]+):(\d{1,5})$/.exec(entry.slice(at + 1))
  const port = Number(m?.[2])
  const host = m?.[1] ?? ''
  const isIp = /^[\d.]+$/.test(host)
  if (m === null || port < 1 || port > 65535 || (isIp ? !net.isIPv4(host) : !HOST.test(host))) {
    throw new UsageError(`bootstrap peer ${JSON.stringify(entry)} is not PEER_ID@HOST:PORT (HOST an IPv4 address or name, PORT its libp2p TCP port, e.g. 12D3KooW…@203.0.113.7:4002)`)
  }
  return { kind: 'peer', addr: `/${isIp ? 'ip4' : 'dns4'}/${host}/tcp/${port}/p2p/${id}`, peerId: id }
}

function peerMultiaddr (entry: string): BootstrapEntry {
  let ma: Multiaddr
  try { ma = multiaddr(entry) } catch {
    throw new UsageError(`bootstrap address ${JSON.stringify(entry)} is not a multiaddr (e.g. /ip4/203.0.113.7/tcp/4002/p2p/12D3KooW…)`)
  }
  const parts = ma.getComponents()
  const last = parts[parts.length - 1]
  if (last?.name !== 'p2p' || last.value === undefined) {
    throw new UsageError(`bootstrap address ${ma.toString()} lacks the peer's /p2p/ID at the end: without it nothing proves who answers`)
  }
  const circuit = parts.findIndex((p) => p.name === 'p2p-circuit')
  if (circuit >= 0 && parts[circuit - 1]?.name !== 'p2p') {
    throw new UsageError(`bootstrap address ${ma.toString()} is relayed but names no relay (…/p2p/RELAY_ID/p2p-circuit/p2p/PEER_ID)`)
  }
  return { kind: 'peer', addr: ma.toString(), peerId: checkPeerId(last.value, entry) }
}

/** One entry; a UsageError naming it and the accepted shapes when it is none of them. */
export function parseBootstrapEntry (text: string, defaultBeaconPort: number): BootstrapEntry {
  const entry = text.trim()
  if (entry.startsWith('/')) return peerMultiaddr(entry)
  if (entry.includes('@')) return peerAt(entry)
  const m = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(entry)
  const port = m?.[2] === undefined ? defaultBeaconPort : Number(m[2])
  if (m === null || port < 1 || port > 65535 || (/^[\d.]+$/.test(m[1] as string) && !net.isIPv4(m[1] as string))) {
    throw new UsageError(`bootstrap address ${JSON.stringify(text)} is not HOST[:PORT] (a beacon target, e.g. 192.168.1.20:${defaultBeaconPort}), PEER_ID@HOST:PORT or a multiaddr ending in /p2p/PEER_ID`)
  }
  return { kind: 'beacon', host: m[1] as string, port }
}

/** Entries split by kind, duplicates once. */
export function splitBootstrap (texts: readonly string[], defaultBeaconPort: number): { beacons: Array<{ host: string, port: number }>, peers: Array<{ addr: string, peerId: string }> } {
  const entries = texts.map((t) => parseBootstrapEntry(t, defaultBeaconPort))
  const beacons = new Map<string, { host: string, port: number }>()
  const peers = new Map<string, { addr: string, peerId: string }>()
  for (const e of entries) {
    if (e.kind === 'beacon') beacons.set(`${e.host}:${e.port}`, { host: e.host, port: e.port })
    else peers.set(e.addr, { addr: e.addr, peerId: e.peerId })
  }
  return { beacons: [...beacons.values()], peers: [...peers.values()] }
}
