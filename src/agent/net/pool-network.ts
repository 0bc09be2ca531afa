import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { gossipsub, TopicValidatorResult, type GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { Connection, ConnectionLimits, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import fs from 'node:fs'
import { performance } from 'node:perf_hooks'
import { decodeMemberCert, decodeRevocationList, RevokedError } from '../../pool/index.js'
import type { Capacity, ShardMode } from '../../ring/assign.js'
import { nextIncarnation } from '../../ring/incarnation.js'
import { lanDefaults, type LivenessConfig } from '../../ring/liveness-config.js'
import { readTopology, topologyPath } from '../../ring/topology.js'
import type { NatType } from '../../nat/classify.js'
import { RateLimitedWarner, type Logger } from '../log.js'
import { CERT_PROTOCOL, decodeCertBundle, encodeCertBundle, MAX_BUNDLE_BYTES } from './cert-bundle.js'
import { MemberDirectory } from './directory.js'
import { ownPublicAddresses } from './public-addresses.js'
import { connectionPath, PATH_PREFERENCE } from './connection-path.js'
import type { Observation, PathKind } from './freshness.js'
import { freshness, type FreshnessService, type FreshnessStats } from './freshness-service.js'
import { HolePuncher, iceServersFor, relayOf, type PunchStats } from './hole-punch.js'
import { PoolRing, ringTopic, type RingReport, type RingStatus } from './pool-ring.js'
import { relayedAddress, RelayReservations, type ReservationStoreHandle } from './relays.js'
import type { PoolTrustStore } from './trust.js'

export interface PoolNetworkInit {
  /** libp2p listen addresses (default every IPv4 interface, a free TCP port) */
  listen?: string[]
  liveness?: LivenessConfig
  /** how the ring splits its columns; every member of a pool must use the same mode */
  shardMode?: ShardMode
  /** a peer that has not shown a certificate for a shared pool by then is disconnected */
  admissionTimeoutMs?: number
  /** how often members we know but are not connected to are dialled again */
  redialIntervalMs?: number
  /** how often pool records are re-read (a local `mesh pool-revoke`, a new certificate) and certificates rechecked */
  trustReloadMs?: number
  /** mesh-relay multiaddrs: reserve a slot on each (retried on the redial timer), reach undialable members through them */
  relays?: string[]
}

export interface PoolNetworkComponents {
  home: string
  privateKey: PrivateKey
  trust: PoolTrustStore & { reload: () => boolean }
  capacity: Capacity
  model: string
  log: Logger
  /** our addresses changed (a relay reservation made): beacons should say so now, not at the next period */
  onAddressesChanged?: () => void
  /** this host's NAT type as measured (UDP); a member that knows it is symmetric still tries to punch to others, never between two symmetric ones */
  natType?: () => NatType | undefined
}

const defaults = {
  listen: ['/ip4/0.0.0.0/tcp/0'],
  shardMode: 'even' as ShardMode,
  // a Noise handshake plus one small stream takes tens of ms on a LAN; seconds leave room for a busy peer
  admissionTimeoutMs: 5000,
  redialIntervalMs: 2000,
  // revocation must reach every ring within 10 s: a second to notice, gossip does the rest
  trustReloadMs: 1000,
  relays: [] as string[]
}

/** with relays, a direct dial gets this long before the relayed addresses are tried (libp2p: 6 s per address) */
const DIRECT_DIAL_MS = 2500

/** how long a stopping node gives its goodbye heartbeat to leave before closing its connections */
const LEAVE_FLUSH_MS = 300

/** the relays' STUN port (mesh-relay's default), where ICE learns our public candidates */
const RELAY_STUN_PORT = 3478

/** a member lost is asked about at most this often (a dial failing every redial tick would ask every 2 s) */
const FRESHNESS_EVERY_MS = 5000


type Services = { identify: ReturnType<ReturnType<typeof identify>>, ping: ReturnType<ReturnType<typeof ping>>, pubsub: GossipSub }

/** Counters of what peers sent that we refused. */
export type NetDropReason =
  | 'bad-bundle' | 'invalid-certificate' | 'invalid-revocation' | 'not-admitted' | 'no-shared-pool' | 'gossip-from-non-member'

/**
 * The pool network: a libp2p node keyed by the device key; certificate-gated connections; one
 * gossip topic per pool carrying heartbeats; liveness from heartbeats and pings; one ring per pool,
 * written to MESH_HOME/ring_topology_<pool>.json.
 */
export class PoolNetwork {
  private node: Libp2p<Services> | undefined
  private readonly directory: MemberDirectory
  private readonly rings = new Map<string, PoolRing>()
  private readonly timers: NodeJS.Timeout[] = []
  private readonly pinging = new Set<string>()
  /** pools whose heartbeat goes out at the next turn of the event loop (see heartbeatSoon) */
  private readonly heartbeatDue = new Set<string>()
  private readonly dialing = new Set<string>()
  /** connected peers whose certificates we have seen: those may be refused as soon as they lose admission */
  private readonly shown = new Set<string>()
  /** addresses of members learned from beacons or bootstrap, by node id */
  private readonly hints = new Map<string, string[]>()
  readonly drops = new Map<NetDropReason, number>()
  /** a refused device keeps redialling: one line per device a minute, with the count held back */
  private readonly refusals: RateLimitedWarner
  private incarnation = 0
  private model: string
  /** set while stopping: after our goodbye no other heartbeat may leave */
  private leaving = false
  private readonly cfg: Required<PoolNetworkInit>
  private readonly relays: RelayReservations
  /** the circuit relay transport's reservation store, once libp2p built it */
  private relayStore: ReservationStoreHandle | undefined
  /** peers kept connected without a certificate while a join runs (holdForJoin) */
  private readonly joinHolds = new Map<string, { until: number, timer: NodeJS.Timeout }>()
  /** WebRTC upgrades of relayed-only members (undefined where @libp2p/webrtc cannot load) */
  private puncher: HolePuncher | undefined
  private readonly fresh: FreshnessService
  /** when each lost member was last asked about, and the direct addresses of its last failed dial */
  private readonly askedAt = new Map<string, number>()
  private readonly failedAddrs = new Map<string, Set<string>>()

  constructor (private readonly c: PoolNetworkComponents, init: PoolNetworkInit) {
    this.model = c.model
    this.cfg = { ...defaults, liveness: lanDefaults(), ...init }
    this.directory = new MemberDirectory(c.trust)
    this.refusals = new RateLimitedWarner(c.log)
    this.relays = new RelayReservations(this.cfg.relays, () => this.relayStore, c.log, this.cfg.admissionTimeoutMs, () => { c.onAddressesChanged?.() })
    this.fresh = freshness()({
      net: { handleMemberProtocol: async (p, h, n) => { await this.handleMemberProtocol(p, h, n) }, openMemberStream: async (id, p, sig) => await this.openMemberStream(id, p, sig), isAdmitted: (id, pool) => this.isAdmitted(id, pool), connectedMembers: (pool) => this.connectedMembers(pool) },
      observe: (poolId, nodeId) => this.observe(poolId, nodeId),
      selfId: peerIdFromPrivateKey(c.privateKey).toString(),
      log: c.log
    })
  }

  private get libp2p (): Libp2p<Services> {
    if (this.node === undefined) throw new Error('pool network is not started')
    return this.node
  }

  get peerId (): string { return this.libp2p.peerId.toString() }

  async start (): Promise<void> {
    if (this.node !== undefined) return
    this.leaving = false
    this.c.trust.reload()
    this.incarnation = nextIncarnation(this.c.home, Date.now())
    const webrtc = await this.webrtcTransport()
    const node = await createLibp2p({
      privateKey: this.c.privateKey,
      addresses: { listen: this.cfg.listen },
      // the relay transport even without relays: one may be learned from the admin's beacons later;
      // WebRTC only dials (hole punching, see hole-punch.ts) and answers offers signalled over a relayed connection
      transports: [tcp(), this.relayTransport(), ...(webrtc === undefined ? [] : [webrtc])],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        ping: ping(),
        // floodPublish sends our heartbeats straight to every subscribed peer; publishing before
        // anyone is connected is normal for the first member of a pool. Relayed connections carry
        // limits (duration, bytes), which libp2p v3 calls "limited": gossip must opt in to run there
        pubsub: gossipsub({ emitSelf: false, allowPublishToZeroTopicPeers: true, floodPublish: true, runOnLimitedConnection: true }),
        // DCUtR upgrades a relayed connection to a direct one where hole punching works
        dcutr: dcutr(),
        // a member bound to a public IP announces it (libp2p 3 would wait for AutoNAT to verify it)
        publicAddresses: ownPublicAddresses()
      }
    })
    this.node = node
    if (webrtc !== undefined) {
      this.puncher = new HolePuncher({
        selfId: node.peerId.toString(),
        relayedMembers: () => this.relayedMembers(),
        // force: libp2p would hand back the relayed connection when the relay sets no limits
        dial: async (addr, signal) => { await node.dial(multiaddr(addr), { signal, force: true }) },
        dialDirect: async (nodeId, addrs, signal) => { await node.dial(addrs.map((a) => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${nodeId}`)), { signal, force: true }) },
        nat: (nodeId) => nodeId === undefined ? this.c.natType?.() : undefined,
        log: this.c.log,
        now: () => performance.now()
      })
    }
    await this.fresh.start()
    await node.handle(CERT_PROTOCOL, (stream, connection) => { void this.onCertStream(stream, connection) }, { maxInboundStreams: 4, runOnLimitedConnection: true })
    node.addEventListener('connection:open', (e) => { this.onConnectionOpen(e.detail) })
    node.addEventListener('peer:disconnect', (e) => { this.onDisconnect(e.detail) })
    // a peer that just subscribed to a pool topic hears our heartbeat now, not up to a period later
    node.services.pubsub.addEventListener('subscription-change', (e) => {
      for (const s of e.detail.subscriptions) {
        const poolId = [...this.rings.keys()].find((id) => ringTopic(id) === s.topic)
        if (s.subscribe && poolId !== undefined) this.heartbeatSoon(poolId)
      }
    })
    this.directory.recheck(Date.now())
    this.syncRings()
    const every = (ms: number, fn: () => void | Promise<void>): void => {
      this.timers.push(setInterval(() => { void Promise.resolve(fn()).catch((err: unknown) => this.c.log.error({ err }, 'pool network timer failed')) }, ms))
    }
    every(this.cfg.liveness.heartbeatIntervalMs, async () => { await this.publishHeartbeats('alive'); this.checkFiles() })
    every(this.cfg.liveness.tickIntervalMs, () => { this.tick() })
    every(this.cfg.redialIntervalMs, () => { this.redial() })
    every(this.cfg.trustReloadMs, () => { this.reloadTrust() })
    await this.publishHeartbeats('alive')
    // relays, and members from the peer cache and the last topology files: now rather than at the first redial tick
    this.redial()
    this.c.log.info({ nodeId: this.peerId, addrs: this.listenAddresses(), incarnation: this.incarnation, relays: this.relays.relays }, 'pool network started')
  }

  /** Say goodbye on every pool topic so peers drop us at once, then close everything. */
  async stop (): Promise<void> {
    const node = this.node
    if (node === undefined) return
    for (const t of this.timers.splice(0)) clearInterval(t)
    for (const h of this.joinHolds.values()) clearTimeout(h.timer)
    this.joinHolds.clear()
    this.heartbeatDue.clear()
    this.leaving = true
    await this.publishHeartbeats('leaving').catch(() => {})
    // publish only queues the goodbye on the gossip streams; stopping at once can close them first
    await new Promise((resolve) => setTimeout(resolve, LEAVE_FLUSH_MS))
    this.node = undefined
    await node.stop()
    this.rings.clear()
  }

  /**
   * Addresses peers can dial, for beacons and heartbeats: loopback only when there is nothing else;
   * then our address through each relay holding a reservation for us.
   */
  listenAddresses (): string[] {
    if (this.node === undefined) return [] // not started (or stopped): nothing to announce
    const all = this.node.getMultiaddrs().map((a) => a.toString()).filter((a) => !a.includes('/p2p-circuit'))
    const routable = all.filter((a) => !a.startsWith('/ip4/127.'))
    const relayed = this.relays.reserved().map((r) => relayedAddress(r, this.peerId))
    return [...(routable.length > 0 ? routable : all).slice(0, 8 - relayed.length), ...relayed]
  }

  /**
   * @libp2p/webrtc's transport, its ICE servers the relays' STUN responders; undefined (logged)
   * where its native part (node-datachannel) cannot load: members then stay relayed.
   */
  private async webrtcTransport (): Promise<ReturnType<typeof import('@libp2p/webrtc').webRTC> | undefined> {
    try {
      const { webRTC } = await import('@libp2p/webrtc')
      return webRTC({ rtcConfiguration: () => ({ iceServers: iceServersFor(this.relays.relays, RELAY_STUN_PORT) }) })
    } catch (err) {
      this.c.log.warn({ err: String(err) }, 'WebRTC is unavailable here: no hole punching, NATed members stay on the relay')
      return undefined
    }
  }

  /** The circuit relay transport, keeping a handle on its reservation store for RelayReservations. */
  private relayTransport (): ReturnType<typeof circuitRelayTransport> {
    const make = circuitRelayTransport({ reservationCompletionTimeout: this.cfg.admissionTimeoutMs })
    return (components) => {
      const transport = make(components)
      // a public property of @libp2p/circuit-relay-v2's CircuitRelayTransport (not in the Transport interface)
      const store = (transport as unknown as { reservationStore?: ReservationStoreHandle }).reservationStore
      if (store === undefined) throw new Error('@libp2p/circuit-relay-v2 has no reservationStore: relays need another way to reserve')
      this.relayStore = store
      return transport
    }
  }

  /** Where a member can be reached (from its beacon, the peer cache or --bootstrap); dialled soon. */
  addPeerAddresses (nodeId: string, addrs: readonly string[]): void {
    if (addrs.length === 0) return
    const before = this.hints.get(nodeId)
    this.hints.set(nodeId, [...addrs].slice(0, 8))
    const node = this.node
    if (node === undefined || nodeId === node.peerId.toString()) return // before start the redial timer picks it up
    const changed = before === undefined || before.join() !== addrs.join()
    if (changed && node.getConnections().every((c) => c.remotePeer.toString() !== nodeId)) void this.dialMember(nodeId)
  }

  /** Reserve a slot on this relay too (learned from the pool admin's beacon), and reach members through it. */
  addRelay (relayAddr: string): void {
    if (!this.relays.add(relayAddr)) return
    this.c.log.info({ relay: relayAddr }, 'relay learned from the pool admin; reserving a slot there')
    if (this.node !== undefined) void this.relays.ensure(this.node)
  }

  /** Dial an address (a --bootstrap entry); the certificate exchange follows by itself. */
  async dial (addr: string, signal?: AbortSignal): Promise<string> {
    const conn = await this.libp2p.dial(multiaddr(addr), { signal })
    return conn.remotePeer.toString()
  }

  /** Every relay we use (configured or learned from the admin's beacons). */
  relayAddresses (): readonly string[] { return this.relays.relays }

  /** Each relay, whether it holds a reservation for us and until when. */
  relayStatus (): ReturnType<RelayReservations['status']> { return this.relays.status() }

  /** Every open connection as plain facts, for status (connection-path.ts classifies them). */
  connectionFacts (): Array<{ nodeId: string, remoteAddr: string, member: boolean, rttMs: number | null, limits: { bytes: string | null, seconds: number | null } | null }> {
    return (this.node?.getConnections() ?? []).filter((c) => c.status === 'open').map((c) => ({
      nodeId: c.remotePeer.toString(),
      remoteAddr: c.remoteAddr.toString(),
      member: this.directory.poolsOf(c.remotePeer.toString()).length > 0,
      rttMs: c.rtt ?? null,
      limits: c.limits === undefined ? null : { bytes: c.limits.bytes === undefined ? null : c.limits.bytes.toString(), seconds: c.limits.seconds ?? null }
    }))
  }

  /**
   * Keep a peer connected for `ms` although it shows no certificate of a shared pool: a device
   * asking for its certificate over libp2p, or (on that device) the admin it asks. Afterwards it
   * is disconnected unless admitted by then.
   */
  holdForJoin (nodeId: string, ms: number): void {
    clearTimeout(this.joinHolds.get(nodeId)?.timer)
    const timer = setTimeout(() => {
      this.joinHolds.delete(nodeId)
      const node = this.node
      if (node === undefined || this.directory.poolsOf(nodeId).length > 0 || this.relays.isRelay(nodeId)) return
      const conn = node.getConnections().find((c) => c.remotePeer.toString() === nodeId)
      if (conn === undefined) return
      this.count('not-admitted')
      void node.hangUp(conn.remotePeer).catch(() => {})
    }, ms)
    timer.unref()
    this.joinHolds.set(nodeId, { until: Date.now() + ms, timer })
  }

  private held (nodeId: string): boolean { return (this.joinHolds.get(nodeId)?.until ?? 0) > Date.now() }

  /**
   * Serve a protocol for devices not yet in a pool (certificate requests): the handler runs for
   * any peer, relayed connections too, and the peer is held (holdForJoin) while it runs.
   */
  async handleJoinProtocol (protocol: string, handler: (stream: Stream, nodeId: string) => Promise<void>, holdMs: number): Promise<void> {
    await this.libp2p.handle(protocol, (stream, connection) => {
      const nodeId = connection.remotePeer.toString()
      this.holdForJoin(nodeId, holdMs)
      handler(stream, nodeId).catch((err: unknown) => { this.c.log.debug({ protocol, peer: nodeId, err: String(err) }, 'join protocol stream failed') })
    }, { maxInboundStreams: 8, runOnLimitedConnection: true })
  }

  /** A stream to a connected peer that need not be a member yet (the admin we ask for a certificate). */
  async openJoinStream (nodeId: string, protocol: string, signal: AbortSignal): Promise<Stream> {
    const conn = this.connectionTo(nodeId)
    if (conn === undefined) throw new Error(`not connected to ${nodeId}`)
    return await conn.newStream(protocol, { signal, runOnLimitedConnection: true })
  }

  /** Close every connection to a peer. */
  hangUp (nodeId: string): void {
    const conn = this.node?.getConnections().find((c) => c.remotePeer.toString() === nodeId)
    if (conn !== undefined) void this.node?.hangUp(conn.remotePeer).catch(() => {})
  }

  /** Whether we have an open connection to this peer. */
  isConnected (nodeId: string): boolean { return this.connectionTo(nodeId) !== undefined }

  /** Whether a connected peer may use `poolId`'s protocols. */
  isAdmitted (nodeId: string, poolId: string): boolean {
    return this.directory.poolsOf(nodeId).includes(poolId)
  }

  ringStatus (poolId: string): RingStatus | undefined {
    return this.rings.get(poolId)?.status(performance.now())
  }

  poolIds (): string[] { return [...this.rings.keys()] }

  /** Every ring (or one pool's) as `mesh ring-status` shows it. */
  ringReports (poolId?: string): RingReport[] {
    return [...this.rings].filter(([id]) => poolId === undefined || id === poolId).map(([id, ring]) => {
      const s = ring.status(performance.now())
      const models = { self: this.model, members: Object.fromEntries(s.topology.members.map((m) => [m.nodeId, ring.membership.modelOf(m.nodeId) ?? null])) }
      const residentMiB = Object.fromEntries(s.topology.members.map((m) => [m.nodeId, ring.membership.residentOf(m.nodeId) ?? null]))
      return { poolId: id, poolName: this.c.trust.poolName(id), source: 'live', topology: s.topology, converged: s.converged, ageMs: s.ageMs, drops: s.drops, models, clockSkewMs: s.clockSkewMs, residentMiB }
    })
  }

  /** A member's liveness in a pool's ring, as users see statuses; undefined if the ring never heard of it. */
  livenessOf (poolId: string, nodeId: string): 'ONLINE' | 'SUSPECT' | 'OFFLINE' | undefined {
    const m = this.rings.get(poolId)?.membership.members().find((x) => x.nodeId === nodeId)
    return m === undefined ? undefined : m.state === 'online' ? 'ONLINE' : m.state === 'suspect' ? 'SUSPECT' : 'OFFLINE'
  }

  ringOf (poolId: string): PoolRing | undefined { return this.rings.get(poolId) }

  /** The model id a pool member serves, as its heartbeat announced it (ours for us); undefined before it said. */
  modelOf (poolId: string, nodeId: string): string | undefined {
    return this.rings.get(poolId)?.membership.modelOf(nodeId)
  }

  /** Announce another model id from now on (a model fetched after start is ready). */
  setModel (id: string): void {
    this.model = id
    for (const ring of this.rings.values()) ring.membership.setModel(id)
  }

  /** Online members of any of our pools whose heartbeats announce this model id. */
  membersServing (modelId: string): string[] {
    const found = new Set<string>()
    for (const ring of this.rings.values()) {
      for (const m of ring.membership.members()) {
        if (m.state === 'online' && m.nodeId !== this.peerId && ring.membership.modelOf(m.nodeId) === modelId) found.add(m.nodeId)
      }
    }
    return [...found]
  }

  /**
   * Serve a pool protocol: a stream from a peer without a valid certificate of a shared pool is
   * refused (counted) before the handler sees it. Relayed connections too: the handler gets their
   * limits (bytes, seconds the relay allows; undefined on a direct one) to refuse what would not fit.
   */
  async handleMemberProtocol (protocol: string, handler: (stream: Stream, nodeId: string, limits: ConnectionLimits | undefined) => Promise<void>, maxInboundStreams: number): Promise<void> {
    await this.libp2p.handle(protocol, (stream, connection) => {
      const nodeId = connection.remotePeer.toString()
      if (this.directory.poolsOf(nodeId).length === 0) {
        this.count('not-admitted')
        stream.abort(new Error('not a member of a shared pool'))
        return
      }
      handler(stream, nodeId, connection.limits).catch((err: unknown) => { this.c.log.warn({ protocol, peer: nodeId, err: String(err) }, 'pool protocol stream failed') })
    }, { maxInboundStreams, runOnLimitedConnection: true })
  }

  /**
   * A connection to a member, the best path first: a direct one (DCUtR may have added it beside a
   * relayed one), then a hole-punched one, then the relay; an unlimited one before a limited one.
   */
  private connectionTo (nodeId: string): Connection | undefined {
    const conns = this.libp2p.getConnections().filter((c) => c.remotePeer.toString() === nodeId && c.status === 'open')
    const rank = (c: Connection): number => PATH_PREFERENCE[connectionPath(c.remoteAddr.toString())] * 2 + (c.limits === undefined ? 0 : 1)
    return conns.sort((a, b) => rank(a) - rank(b))[0]
  }

  /** The path of our best connection to each connected member (what jobs and the tensor plane use). */
  memberPaths (): Record<string, PathKind> {
    const out: Record<string, PathKind> = {}
    for (const c of this.node?.getConnections() ?? []) {
      const id = c.remotePeer.toString()
      if (out[id] !== undefined || this.directory.poolsOf(id).length === 0) continue
      const best = this.connectionTo(id)
      if (best !== undefined) out[id] = connectionPath(best.remoteAddr.toString())
    }
    return out
  }

  /** Hole punching's and freshness queries' counters, for status. */
  holePunchStats (): PunchStats | null { return this.puncher?.stats() ?? null }
  freshnessStats (): FreshnessStats { return this.fresh.stats() }

  /** Admitted members without a direct TCP connection: their relay (while relayed) and the public addresses they announce. */
  private relayedMembers (): Array<{ nodeId: string, relay: string | undefined, publicAddrs: string[] }> {
    const byPeer = new Map<string, Connection[]>()
    for (const c of this.libp2p.getConnections()) {
      if (c.status !== 'open') continue
      const id = c.remotePeer.toString()
      byPeer.set(id, [...(byPeer.get(id) ?? []), c])
    }
    const out: Array<{ nodeId: string, relay: string | undefined, publicAddrs: string[] }> = []
    for (const [id, conns] of byPeer) {
      if (this.directory.poolsOf(id).length === 0) continue
      const paths = conns.map((c) => connectionPath(c.remoteAddr.toString()))
      if (paths.some((p) => p === 'direct-lan' || p === 'direct-wan')) continue
      const relay = paths.includes('hole-punched') ? undefined : conns.map((c) => relayOf(c.remoteAddr.toString())).find((r) => r !== undefined)
      const announced = new Set([...this.rings.values()].flatMap((ring) => [...ring.membership.addressesOf(id)]))
      out.push({ nodeId: id, relay, publicAddrs: [...announced].filter((a) => connectionPath(a) === 'direct-wan' && a.includes('/tcp/')) })
    }
    return out
  }

  /** Connected members admitted to a pool (not us). */
  private connectedMembers (poolId: string): string[] {
    const ids = new Set(this.libp2p.getConnections().filter((c) => c.status === 'open').map((c) => c.remotePeer.toString()))
    return [...ids].filter((id) => this.isAdmitted(id, poolId))
  }

  /** What we know of a pool member for a freshness answer: when we last heard it, over what, where it says it listens. */
  private observe (poolId: string, nodeId: string): Observation | undefined {
    const ring = this.rings.get(poolId)
    const m = ring?.membership.members().find((x) => x.nodeId === nodeId)
    if (ring === undefined || m === undefined || !ring.membership.isCertified(nodeId)) return undefined
    const conn = this.node === undefined ? undefined : this.connectionTo(nodeId)
    const endpoint = conn?.remoteAddr.toString() ?? null
    return {
      ageMs: Math.max(0, performance.now() - m.lastHeardMs),
      path: endpoint === null ? null : connectionPath(endpoint),
      endpoint,
      addresses: ring.membership.addressesOf(nodeId)
    }
  }

  /**
   * A member was lost (disconnected, a dial failed): ask the other members where it was heard
   * last and dial the freshest addresses. At most once per member every FRESHNESS_EVERY_MS.
   */
  private async recover (nodeId: string): Promise<void> {
    const now = performance.now()
    if (this.node === undefined || this.leaving || this.connectionTo(nodeId) !== undefined || now - (this.askedAt.get(nodeId) ?? -Infinity) < FRESHNESS_EVERY_MS) return
    const pools = this.directory.poolsOf(nodeId).filter((p) => this.rings.has(p))
    if (pools.length === 0 || this.relays.isRelay(nodeId)) return
    this.askedAt.set(nodeId, now)
    const found: string[] = []
    for (const poolId of pools) {
      const { addresses } = await this.fresh.ask(poolId, nodeId, this.failedAddrs.get(nodeId) ?? new Set())
      for (const a of addresses) if (!found.includes(a)) found.push(a)
    }
    if (found.length === 0 || this.node === undefined || this.connectionTo(nodeId) !== undefined) return
    this.c.log.info({ nodeId, addresses: found }, 'freshness: dialling where the pool heard the member last')
    this.hints.set(nodeId, found.slice(0, 8))
    await this.dialMember(nodeId)
  }

  /** The address a connected member was reached at (a multiaddr), for protocols that connect it directly. */
  remoteAddressOf (nodeId: string): string | undefined {
    return this.connectionTo(nodeId)?.remoteAddr.toString()
  }

  /** A new stream to a connected, admitted member, over a relayed (limited) connection if that is all there is. */
  async openMemberStream (nodeId: string, protocol: string, signal: AbortSignal): Promise<Stream> {
    const conn = this.connectionTo(nodeId)
    if (conn === undefined || this.directory.poolsOf(nodeId).length === 0) throw new Error(`${nodeId} is not a connected pool member`)
    return await conn.newStream(protocol, { signal, runOnLimitedConnection: true })
  }

  private count (reason: NetDropReason): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1)
  }

  // ---- certificate exchange -------------------------------------------------------------

  private onConnectionOpen (conn: Connection): void {
    const peer = conn.remotePeer
    // show our own certificates first: the peer cannot admit us without them
    void this.sendBundle(peer, false)
    // a relay we chose holds no certificate; it gets none of the pool protocols either
    if (this.relays.isRelay(peer.toString())) return
    setTimeout(() => {
      // a relay learned meanwhile (from the admin's beacon), or one carrying our connections to members, is no member either
      if (this.relays.isRelay(peer.toString()) || this.relaysForUs(peer.toString()) || this.held(peer.toString())) return
      if (this.node !== undefined && this.directory.poolsOf(peer.toString()).length === 0 && this.connected(peer)) {
        this.count('not-admitted')
        this.refusals.warn(`refuse:${peer.toString()}`, Date.now(), { peer: peer.toString() }, 'peer showed no certificate for a shared pool in time; disconnecting')
        void this.libp2p.hangUp(peer).catch(() => {})
      }
    }, this.cfg.admissionTimeoutMs).unref()
  }

  /** Whether a peer is the relay hop of one of our connections (dialled through a relayed address of a member). */
  private relaysForUs (peer: string): boolean {
    return this.node?.getConnections().some((c) => c.remoteAddr.toString().includes(`/p2p/${peer}/p2p-circuit`)) ?? false
  }

  private connected (peer: PeerId): boolean {
    return this.libp2p.getConnections(peer).length > 0
  }

  /**
   * Send what we know: before the peer is admitted only our own certificates; afterwards also the
   * certificates and revocation lists of the pools we share with it.
   */
  private async sendBundle (peer: PeerId, full: boolean): Promise<void> {
    const shared = this.directory.poolsOf(peer.toString())
    const own = this.c.trust.memberPools().map((c) => c.bytes)
    const bundle = full
      ? { certificates: [...own, ...shared.flatMap((p) => this.directory.members(p).map((m) => m.bytes))], revocations: this.revocationsFor(shared) }
      : { certificates: own, revocations: [] }
    try {
      const stream = await this.certStream(peer)
      await lpStream(stream, { maxDataLength: MAX_BUNDLE_BYTES }).write(encodeCertBundle(bundle))
      await stream.close()
    } catch (err) {
      this.c.log.debug({ peer: peer.toString(), err: String(err) }, 'could not send certificates')
    }
  }

  /**
   * A certificate stream on the connection we have. libp2p's dialProtocol(peer) never reuses a
   * relayed (limited) connection: it would dial the peer again, and wait out a blackholed direct address.
   */
  private async certStream (peer: PeerId): Promise<Stream> {
    const signal = AbortSignal.timeout(this.cfg.admissionTimeoutMs)
    const conn = this.connectionTo(peer.toString())
    if (conn !== undefined) return await conn.newStream(CERT_PROTOCOL, { signal, runOnLimitedConnection: true })
    return await this.libp2p.dialProtocol(peer, CERT_PROTOCOL, { signal, runOnLimitedConnection: true })
  }

  private revocationsFor (pools: readonly string[]): Uint8Array[] {
    // the lists are root-signed and name their pool; the trust store keeps one per pool
    return pools.length === 0 ? [] : [...this.c.trust.revocationLists()]
  }

  private async onCertStream (stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer
    let bytes: Uint8Array
    try {
      const frame = await lpStream(stream, { maxDataLength: MAX_BUNDLE_BYTES }).read({ signal: AbortSignal.timeout(this.cfg.admissionTimeoutMs) })
      bytes = frame.subarray()
      await stream.close()
    } catch {
      this.count('bad-bundle')
      stream.abort(new Error('bad certificate bundle'))
      return
    }
    this.takeBundle(peer, bytes)
  }

  private takeBundle (peer: PeerId, bytes: Uint8Array): void {
    const nodeId = peer.toString()
    let bundle
    try { bundle = decodeCertBundle(bytes) } catch { this.count('bad-bundle'); return }
    const now = Date.now()
    const firstShow = !this.shown.has(nodeId)
    this.shown.add(nodeId)
    const wasAdmitted = this.directory.poolsOf(nodeId).length > 0
    let learned = false
    for (const rev of bundle.revocations) {
      try {
        const poolId = this.c.trust.acceptRevocationList(rev)
        if (poolId !== undefined) { learned = true; this.c.log.info({ poolId, from: nodeId }, 'newer revocation list received') }
      } catch { this.count('invalid-revocation') }
    }
    if (learned) this.directory.recheck(now)
    for (const cert of bundle.certificates) {
      try { if (this.directory.learn(cert, now)) learned = true } catch { this.count('invalid-certificate') }
    }
    const admitted = this.directory.poolsOf(nodeId).length > 0
    const revokedIn = admitted ? [] : this.revokedPools(bundle.certificates, now)
    if (admitted && firstShow) {
      this.c.log.info({ peer: nodeId, pools: this.directory.poolsOf(nodeId) }, 'peer admitted')
      // admitted over a relay: try for a direct path now rather than at the next redial
      this.puncher?.tick()
    }
    // a device without any certificate may be joining: its admission window (or join hold) decides
    if (!admitted && (this.held(nodeId) || bundle.certificates.length === 0)) {
      if (learned) this.membersChanged()
      return
    }
    if (!admitted) {
      this.count('no-shared-pool')
      this.refusals.warn(`refuse:${nodeId}`, Date.now(), { peer: nodeId, revokedIn }, 'peer has no valid certificate for a pool we share; disconnecting')
      // a revoked member is shown the root-signed list that revokes it, so it leaves the pool's ring
      // and stops dialling instead of waiting to time everyone out
      void (revokedIn.length > 0 ? this.tellRevoked(peer, revokedIn) : Promise.resolve())
        .finally(() => { void this.node?.hangUp(peer).catch(() => {}) })
    }
    if (learned) this.membersChanged()
    else if (admitted && !wasAdmitted) void this.sendBundle(peer, true)
  }

  /** The pools in which these certificates (a refused peer's) are revoked by the list we hold. */
  private revokedPools (certificates: readonly Uint8Array[], now: number): string[] {
    const pools = new Set<string>()
    for (const bytes of certificates) {
      try { this.c.trust.verifyCertificate(bytes, now) } catch (err) {
        if (err instanceof RevokedError) pools.add(decodeMemberCert(bytes).poolId)
      }
    }
    return [...pools]
  }

  private async tellRevoked (peer: PeerId, pools: readonly string[]): Promise<void> {
    const revocations = this.c.trust.revocationLists().filter((l) => pools.includes(decodeRevocationList(l).poolId))
    try {
      const stream = await this.certStream(peer)
      await lpStream(stream, { maxDataLength: MAX_BUNDLE_BYTES }).write(encodeCertBundle({ certificates: [], revocations }))
      await stream.close()
    } catch (err) {
      this.c.log.debug({ peer: peer.toString(), err: String(err) }, 'could not send the revocation list')
    }
  }

  /** Certificates or revocations changed: rings follow, refused peers go, the news spreads. */
  private membersChanged (): void {
    this.syncRings()
    for (const conn of this.libp2p.getConnections()) {
      const peer = conn.remotePeer
      // a peer still inside its admission window has not shown its certificate yet
      if (this.shown.has(peer.toString()) && this.directory.poolsOf(peer.toString()).length === 0 && !this.held(peer.toString())) {
        this.c.log.info({ peer: peer.toString() }, 'peer no longer holds a valid certificate; disconnecting')
        void this.libp2p.hangUp(peer).catch(() => {})
      }
    }
    const peers = new Map(this.libp2p.getConnections().map((c) => [c.remotePeer.toString(), c.remotePeer]))
    for (const peer of peers.values()) {
      if (this.directory.poolsOf(peer.toString()).length > 0) void this.sendBundle(peer, true)
      // the admin we joined through, and the relays we reached it by: our new certificate is what admits us there
      else if (this.held(peer.toString()) || this.relays.isRelay(peer.toString()) || this.relaysForUs(peer.toString())) void this.sendBundle(peer, false)
    }
  }

  /**
   * Take in changed pool records now rather than at the next poll (the agent calls it when a
   * certificate was installed); a new pool's ring then dials its members at once.
   */
  reloadTrust (): void {
    if (this.node === undefined) return
    const changedOnDisk = this.c.trust.reload()
    const changed = this.directory.recheck(Date.now())
    if (!changedOnDisk && changed.size === 0) return
    this.membersChanged()
    this.redial()
  }

  // ---- rings and heartbeats -------------------------------------------------------------

  /** One ring per pool we hold a certificate in; each follows the directory's member set. */
  private syncRings (): void {
    const now = performance.now()
    const pubsub = this.libp2p.services.pubsub
    const ours = new Map(this.c.trust.memberPools().map((c) => [c.poolId, c]))
    for (const [poolId, own] of ours) {
      let ring = this.rings.get(poolId)
      if (ring === undefined) {
        this.hintsFromLastTopology(poolId)
        ring = new PoolRing({
          home: this.c.home,
          poolId,
          self: { nodeId: own.nodeId, name: own.name },
          incarnation: this.incarnation,
          capacity: this.c.capacity,
          residentMiB: () => process.memoryUsage.rss() / 2 ** 20,
          model: this.model,
          addresses: this.listenAddresses(),
          mode: this.cfg.shardMode,
          config: this.cfg.liveness,
          privateKey: this.c.privateKey,
          log: this.c.log,
          // tell the pool at once: peers agree on the new ring and its epoch in round trips, not heartbeat periods
          onChanged: () => { this.heartbeatSoon(poolId) }
        }, now)
        this.rings.set(poolId, ring)
        const topic = ringTopic(poolId)
        const r = ring
        pubsub.topicValidators.set(topic, async (from, msg) => await this.validate(poolId, r, from, msg.data))
        pubsub.subscribe(topic)
      }
      ring.membership.setCertified(this.directory.members(poolId), now)
      ring.save()
    }
    for (const poolId of [...this.rings.keys()]) {
      if (ours.has(poolId)) continue
      pubsub.unsubscribe(ringTopic(poolId))
      pubsub.topicValidators.delete(ringTopic(poolId))
      this.rings.delete(poolId)
      // our certificate was revoked or expired: we are in no ring of this pool, and the file must not say otherwise
      fs.rmSync(topologyPath(this.c.home, poolId), { force: true })
      this.c.log.warn({ poolId }, 'no valid certificate for this pool any more (revoked or expired); left its ring')
    }
  }

  /**
   * The ring file of our last life names the members we were with and where they listened: dial
   * them at start-up even if the peer cache missed them (it is saved every few seconds, a kill -9
   * loses the rest). Read before the new ring overwrites the file.
   */
  private hintsFromLastTopology (poolId: string): void {
    let last
    try { last = readTopology(this.c.home, poolId) } catch { return } // corrupt: the ring rewrites it
    for (const m of last?.members ?? []) {
      if (m.nodeId !== this.peerId && !this.hints.has(m.nodeId) && m.addresses.length > 0) this.hints.set(m.nodeId, [...m.addresses].slice(0, 8))
    }
  }

  /** Publish a pool's heartbeat at the next turn of the event loop; calls in the same turn coalesce. */
  private heartbeatSoon (poolId: string): void {
    if (this.leaving || this.heartbeatDue.has(poolId)) return
    this.heartbeatDue.add(poolId)
    setImmediate(() => {
      if (!this.heartbeatDue.delete(poolId)) return // stopped meanwhile
      const ring = this.rings.get(poolId)
      if (ring === undefined || this.node === undefined) return
      void ring.heartbeat('alive')
        .then(async (hb) => { await this.node?.services.pubsub.publish(ringTopic(poolId), hb) })
        .catch((err: unknown) => { this.c.log.debug({ poolId, err: String(err) }, 'immediate heartbeat failed') })
    })
  }

  /** Gossip's gate for a pool topic: only admitted peers may pass messages, only members' heartbeats count. */
  private async validate (poolId: string, ring: PoolRing, from: PeerId, data: Uint8Array): Promise<TopicValidatorResult> {
    if (!this.isAdmitted(from.toString(), poolId)) { this.count('gossip-from-non-member'); return TopicValidatorResult.Reject }
    const verdict = await ring.receive(data, () => performance.now())
    return verdict === 'accept' ? TopicValidatorResult.Accept : verdict === 'ignore' ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
  }

  private async publishHeartbeats (status: 'alive' | 'leaving'): Promise<void> {
    const pubsub = this.libp2p.services.pubsub
    const addrs = this.listenAddresses()
    await Promise.all([...this.rings].map(async ([poolId, ring]) => {
      ring.membership.setAddresses(addrs)
      await pubsub.publish(ringTopic(poolId), await ring.heartbeat(status))
    }))
  }

  private checkFiles (): void {
    for (const ring of this.rings.values()) ring.checkFile()
  }

  private tick (): void {
    const now = performance.now()
    for (const ring of this.rings.values()) {
      ring.membership.tick(now)
      ring.save()
      for (const nodeId of ring.membership.suspects()) void this.probe(nodeId)
      this.closeStale(ring)
    }
  }

  /**
   * A member gone OFFLINE while its connection still looks open: the connection is stale (its
   * address changed, a NAT dropped the mapping; TCP would take minutes to notice). Close it, so
   * the redial and freshness queries find the member where it is now.
   */
  private closeStale (ring: PoolRing): void {
    // connections' open times are wall-clock ms, liveness is monotonic
    const wallToMono = performance.now() - Date.now()
    for (const m of ring.membership.members()) {
      if (m.state !== 'offline' || m.offlineCause === 'left' || m.nodeId === this.peerId) continue
      // only connections older than the silence: a fresh one has had no time to carry a heartbeat yet
      const conns = this.libp2p.getConnections().filter((c) => c.remotePeer.toString() === m.nodeId && c.status === 'open' && c.timeline.open + wallToMono < m.sinceMs)
      if (conns.length === 0) continue
      this.c.log.info({ nodeId: m.nodeId, addrs: conns.map((c) => c.remoteAddr.toString()) }, 'member offline on an open connection; closing it as stale')
      // a close with a short grace (then libp2p forces it): an abort races yamux's pending window
      // updates, which then throw uncaught (StreamStateError) and take the agent down
      for (const c of conns) void c.close({ signal: AbortSignal.timeout(1000) }).catch(() => {})
    }
  }

  /** Ping a suspect member directly: its heartbeats may be lost while it is fine. */
  private async probe (nodeId: string): Promise<void> {
    if (this.pinging.has(nodeId)) return
    const conn = this.libp2p.getConnections().find((c) => c.remotePeer.toString() === nodeId)
    if (conn === undefined) { void this.dialMember(nodeId); return }
    this.pinging.add(nodeId)
    try {
      await this.libp2p.services.ping.ping(conn.remotePeer, { signal: AbortSignal.timeout(this.cfg.liveness.pingTimeoutMs) })
      const now = performance.now()
      for (const ring of this.rings.values()) { ring.membership.pingReply(nodeId, now); ring.save() }
    } catch {
      // no reply: the timers decide
    } finally {
      this.pinging.delete(nodeId)
    }
  }

  private onDisconnect (peer: PeerId): void {
    this.shown.delete(peer.toString())
    const now = performance.now()
    for (const ring of this.rings.values()) { ring.membership.disconnected(peer.toString(), now); ring.save() }
    // the last connection to a member went: the pool may know where it is now
    void this.recover(peer.toString()).catch((err: unknown) => { this.c.log.debug({ nodeId: peer.toString(), err: String(err) }, 'freshness query failed') })
  }

  /** Reconnect to members we know and are not connected to (a restart, a healed partition). */
  private redial (): void {
    void this.relays.ensure(this.libp2p)
    if (this.rings.size === 0) return // in no pool's ring: no member to dial
    this.puncher?.tick()
    // a connection being closed (a stale one) is no reason to wait
    const connected = new Set(this.libp2p.getConnections().filter((c) => c.status === 'open').map((c) => c.remotePeer.toString()))
    const wanted = new Set<string>(this.hints.keys())
    for (const poolId of this.rings.keys()) for (const m of this.directory.members(poolId)) wanted.add(m.nodeId)
    for (const nodeId of wanted) if (nodeId !== this.peerId && !connected.has(nodeId)) void this.dialMember(nodeId)
  }

  private async dialMember (nodeId: string): Promise<void> {
    const addrs = new Set(this.hints.get(nodeId) ?? [])
    for (const ring of this.rings.values()) {
      for (const a of ring.membership.addressesOf(nodeId)) addrs.add(a)
    }
    // through each of our relays too: it refuses unless the member holds a reservation there
    for (const r of this.relays.relays) addrs.add(relayedAddress(r, nodeId))
    if (addrs.size === 0 || this.dialing.has(nodeId) || this.relays.isRelay(nodeId)) return
    this.dialing.add(nodeId)
    const withPeer = [...addrs].map((a) => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${nodeId}`))
    // direct first, whatever libp2p's order would be (it puts a public relay before a private LAN address)
    const direct = withPeer.filter((a) => !a.toString().includes('/p2p-circuit'))
    const relayed = withPeer.filter((a) => a.toString().includes('/p2p-circuit'))
    try {
      if (direct.length > 0) {
        try {
          await this.libp2p.dial(direct, { signal: AbortSignal.timeout(relayed.length > 0 ? DIRECT_DIAL_MS : this.cfg.admissionTimeoutMs) })
          return
        } catch (err) {
          if (relayed.length === 0) throw err
        }
      }
      await this.libp2p.dial(relayed, { signal: AbortSignal.timeout(this.cfg.admissionTimeoutMs) })
      this.failedAddrs.delete(nodeId)
    } catch (err) {
      this.c.log.debug({ nodeId, err: String(err) }, 'dial failed')
      // the addresses we had failed: the pool may have heard the member elsewhere since
      this.failedAddrs.set(nodeId, new Set(direct.map((a) => a.toString().replace(/\/p2p\/[^/]+$/, ''))))
      setImmediate(() => { void this.recover(nodeId).catch(() => {}) })
    } finally {
      this.dialing.delete(nodeId)
    }
  }
}

/** Two-stage factory: options now, collaborators when the agent wires them. */
export const poolNetwork = (init: PoolNetworkInit = {}) => (c: PoolNetworkComponents): PoolNetwork => new PoolNetwork(c, init)
