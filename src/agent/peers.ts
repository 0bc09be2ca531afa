import type { PeerConfig } from './config.js'

/** How recently a peer was heard from. Upper case, as users see it. */
export type PeerStatus = 'ONLINE' | 'SUSPECT' | 'OFFLINE'

export interface PeerRecord {
  poolId: string
  nodeId: string
  name: string
  /** hex device public key */
  publicKey: string
  roles: string[]
  certSerial: string
  /** where its last beacon came from */
  address: string
  port: number
  /** heard by unicast (its packets come from a beacon port, not a multicast send socket): announce to it by unicast too */
  unicast: boolean
  listenAddrs: string[]
  capabilities: string[]
  /** ms since the epoch; 0 for a peer only known from the cache */
  lastSeen: number
}

export interface PeerView extends PeerRecord { status: PeerStatus }

/** Pure: the status a peer has at `now` given when it was last heard. */
export function peerStatus (lastSeen: number, now: number, cfg: PeerConfig): PeerStatus {
  const silent = now - lastSeen
  if (silent < cfg.suspectAfterMs) return 'ONLINE'
  if (silent < cfg.offlineAfterMs) return 'SUSPECT'
  return 'OFFLINE'
}

const key = (poolId: string, nodeId: string): string => `${poolId}/${nodeId}`

/**
 * Verified members seen on the LAN, per pool. Status is computed when read, from lastSeen, so no
 * timer has to move peers between states.
 */
export class PeerTable {
  private readonly peers = new Map<string, PeerRecord>()

  /** Record a verified announce. Returns true when the peer is new or came back from SUSPECT/OFFLINE. */
  seen (p: PeerRecord, now: number, cfg: PeerConfig): boolean {
    const old = this.peers.get(key(p.poolId, p.nodeId))
    this.peers.set(key(p.poolId, p.nodeId), p)
    return old === undefined || peerStatus(old.lastSeen, now, cfg) !== 'ONLINE'
  }

  /** Peers from the cache of a previous run: known addresses, not yet heard. Never overrides a live entry. */
  remember (p: PeerRecord): void {
    if (!this.peers.has(key(p.poolId, p.nodeId))) this.peers.set(key(p.poolId, p.nodeId), p)
  }

  list (poolId: string | undefined, now: number, cfg: PeerConfig): PeerView[] {
    return [...this.peers.values()]
      .filter((p) => poolId === undefined || p.poolId === poolId)
      .map((p) => ({ ...p, status: peerStatus(p.lastSeen, now, cfg) }))
      .sort((a, b) => a.poolId.localeCompare(b.poolId) || a.name.localeCompare(b.name) || a.nodeId.localeCompare(b.nodeId))
  }

  records (): PeerRecord[] { return [...this.peers.values()] }
}
