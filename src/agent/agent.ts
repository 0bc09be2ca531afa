import crypto from 'node:crypto'
import os from 'node:os'
import { MeshError } from '../errors.js'
import type { ServedModel } from '../inference/served.js'
import { llmUnitsForColumns } from '../inference/llm/shard-plan.js'
import { unitsForColumns, type ShardUnits } from '../inference/shard.js'
import type { RingReport } from './net/pool-ring.js'
import { ModelService, type FetchStatus, type ModelPlan } from './model-service.js'
import { isRevoked, libp2pPrivateKey, poolTrust, recordRevocation, type Device } from '../pool/index.js'
import { Announcer } from './announcer.js'
import { LocalApi } from './api/server.js'
import { gatewayModel, healthOf, hostMemory, whyNotReady, type AgentView } from './api/openai/agent-view.js'
import { openAiGateway } from './api/openai/component.js'
import { gatewayDefaults } from './api/openai/server.js'
import { BeaconService, type AcceptedBeacon, type BeaconStats } from './beacon/service.js'
import { ed25519Signer } from './beacon/signing.js'
import type { Source, UnicastTarget } from './beacon/transport.js'
import type { AgentConfig } from './config.js'
import { ControlPlaneLink, type ControlPlaneLinkStatus } from './control-plane-link.js'
import { CertJoin, type JoinStats } from './join.js'
import { RateLimitedWarner, type Logger } from './log.js'
import { loadPeerCache, savePeerCache } from './peer-cache.js'
import { PeerTable, type PeerView } from './peers.js'
import { claimPidFile, releasePidFile } from './pidfile.js'
import type { FreshnessStats } from './net/freshness-service.js'
import type { PunchStats } from './net/hole-punch.js'
import { poolNetwork } from './net/pool-network.js'
import { BootstrapDialer, bootstrapBackoff } from './net/bootstrap-dialer.js'
import { CERT_REQUEST_PROTOCOL, CertRequestServer, requestCertificate } from './net/cert-request.js'
import { memberStunTargets, natDetector } from './net/nat-detector.js'
import { StunResponder } from '../nat/stun-server.js'
import { natBlock, type NatBlock } from './net/nat-status.js'
import { peerIdOf, relaysIn } from './net/relays.js'
import { RecordPoolTrust } from './net/pool-trust.js'
import { PoolDirectory } from './pools.js'
import { inferenceRequestSchema } from './inference/events.js'
import { JobService, lanJobDefaults } from './inference/jobs.js'
import { ModelHost } from './inference/models.js'
import { planeHost, TensorLinks } from './inference/tensor-links.js'

/** Anything the agent runs that holds sockets, timers or files. start/stop are idempotent. */
export interface Startable { start: () => void | Promise<void>, stop: () => void | Promise<void> }

export interface AgentStatus {
  pid: number
  nodeId: string
  name: string
  home: string
  startedAt: string
  beacon: BeaconStats
  /** certificate joins: by beacon, and over libp2p (/mesh/cert-request/1.0.0: answered, dropped by reason) */
  join: JoinStats & { libp2p: { answered: number, drops: Record<string, number> } }
  pools: Array<{
    poolId: string, name: string, role: string, state: string, certSerial: string | null, peers: Record<'ONLINE' | 'SUSPECT' | 'OFFLINE', number>
    /** the pool's ring as this agent sees it; null until it holds a certificate */
    ring: { epoch: number, hash: string, members: number, converged: boolean } | null
  }>
  /** libp2p node: listen addresses, refused peers by reason; tensor-plane links by peer: direct TCP, or a stream on the (maybe relayed) libp2p connection; the relays it was given (--relay) */
  net: {
    addresses: string[], drops: Record<string, number>, tensorLinks: Record<string, 'tcp' | 'stream'>, relays: string[]
    /** WebRTC upgrades of relayed members (null where WebRTC cannot load); freshness queries asked and answered */
    holePunch: PunchStats | null
    freshness: FreshnessStats
  }
  /** NAT type (UDP, by STUN at the relays), reachability, relay reservations, connections by path and each member's path */
  nat: NatBlock
  /** the model this member serves; `id` is what its heartbeats announce; null while it is being fetched */
  model: { id: string, checkpoint: string, tokenizer: string, checkpointSha256: string, tokenizerSha256: string } | null
  /** the fetch of a missing checkpoint from a pool member (mesh start --model-sha256); null when none was needed */
  modelFetch: FetchStatus | null
  /** the HTTP ring at mesh-control-plane (--control-plane), null without one */
  controlPlane: ControlPlaneLinkStatus | null
  /** the OpenAI-compatible API and dashboard (--api): where it listens; null without one */
  api: { url: string } | null
}

export interface Agent {
  readonly status: () => AgentStatus
  readonly peers: (poolId?: string) => PeerView[]
  start: () => Promise<void>
  stop: () => Promise<void>
  /** resolves once stop() has finished, however it was asked for (signal, `mesh stop`) */
  readonly stopped: Promise<void>
}

export interface AgentDeps {
  device: Device
  log: Logger
  /** the model this member serves, checked and hashed, or the fetch of its checkpoint (planModel) */
  model: ModelPlan
  clock?: () => number
  random?: () => number
}

/** how often the pool store is re-read: picks up pool-join, pool-approve and revocations within a second */
const POOL_POLL_MS = 1000
/** the peer cache is written at most this often */
const CACHE_SAVE_MS = 10_000
/** after start, cached peers not yet heard are announced to by unicast for this long */
const CACHE_PROBE_MS = 60_000

/** Each ring member's units of the served model, so ring-status can say who gets none. */
function withUnits (reports: RingReport[], m: ServedModel | null): RingReport[] {
  if (m === null) return reports
  const unitsOf = (start: number, end: number): ShardUnits => m.format === 'gguf' ? llmUnitsForColumns(m.config, m.units, start, end) : unitsForColumns(m.config, start, end)
  return reports.map((r) => ({ ...r, units: Object.fromEntries(r.topology.members.map((x) => [x.nodeId, unitsOf(x.start, x.end)])) }))
}

function servedStatus (m: ServedModel | null): AgentStatus['model'] {
  if (m === null) return null
  return { id: m.identity.id, checkpoint: m.checkpointPath, tokenizer: m.tokenizerPath, checkpointSha256: m.identity.checkpointSha256, tokenizerSha256: m.identity.tokenizerSha256 }
}

/**
 * Builds the agent's components in dependency order, starts them in order and stops them in reverse;
 * if a start fails, what already started is stopped. The libp2p pool network (src/agent/net) starts
 * first, so beacons announce the addresses it really bound.
 */
export function createAgent (config: AgentConfig, deps: AgentDeps): Agent {
  const { device, log } = deps
  const clock = deps.clock ?? Date.now
  const random = deps.random ?? (() => crypto.randomInt(0, 2 ** 32) / 2 ** 32)
  const startedAt = clock()
  const warner = new RateLimitedWarner(log)
  const pools = new PoolDirectory(config.home, (poolId, err) => {
    warner.warn(`pool-file:${poolId}`, clock(), { pool: poolId, err: err.message }, 'cannot read a pool file; keeping its last good state')
  })
  const peers = new PeerTable()
  let cacheDirty = false

  const unicastTargets = (): UnicastTarget[] => {
    const now = clock()
    return peers.list(undefined, now, config.peers)
      .filter((p) => p.unicast || (p.lastSeen === 0 && now - startedAt < CACHE_PROBE_MS))
      .map((p) => ({ host: p.address, port: p.port }))
  }

  const onAccepted = (a: AcceptedBeacon, from: Source): void => {
    if (a.type === 'announce') {
      const c = a.cert
      const fresh = peers.seen({
        poolId: a.poolId,
        nodeId: c.nodeId,
        name: c.name,
        publicKey: a.sender,
        roles: [...c.roles],
        certSerial: c.serial,
        address: from.address,
        port: from.port,
        // multicast leaves from per-interface sockets on ephemeral ports; unicast from the beacon port
        unicast: from.port === config.beacon.port,
        listenAddrs: a.beacon.listenAddrs,
        capabilities: a.beacon.capabilities,
        lastSeen: clock()
      }, clock(), config.peers)
      net.addPeerAddresses(c.nodeId, a.beacon.listenAddrs)
      // the admin's relay (it announces its address through it): members need no --relay of their own
      if (c.roles.includes('admin')) for (const relay of relaysIn(a.beacon.listenAddrs)) net.addRelay(relay)
      if (fresh) {
        log.info({ pool: a.poolId, node: c.nodeId, name: c.name, address: from.address }, 'peer online')
        announcer.soon()
        cacheDirty = true
      }
      return
    }
    join.onBeacon(a, from)
  }

  const net = poolNetwork({ listen: config.ring.listen, shardMode: config.ring.shardMode, relays: config.ring.relays })({
    home: config.home,
    privateKey: libp2pPrivateKey(device),
    trust: new RecordPoolTrust(config.home, device.nodeId, () => pools.all().map((p) => p.record)),
    // measured matmul speed joins when inference reports it; until then capacity mode splits by cores
    capacity: { cores: os.availableParallelism(), memoryMiB: Math.floor(os.totalmem() / 2 ** 20), matmulMflops: 0 },
    model: deps.model.kind === 'serve' ? deps.model.model.identity.id : '',
    log: log.child({ component: 'net' }),
    // members that were told nothing about our relay learn it from our next beacon
    onAddressesChanged: () => { announcer.burst() },
    natType: () => { const t = nat.status().type; return t === 'unknown' ? undefined : t }
  })
  // NAT type by STUN at the relays we use (mesh-relay answers on UDP 3478/3479)
  const nat = natDetector()({
    relays: () => net.relayAddresses(),
    // members on public addresses answer STUN too (memberStun below): more destinations to compare
    members: () => memberStunTargets(pools.all().flatMap((p) => {
      const ring = net.ringOf(p.poolId)
      return ring === undefined ? [] : ring.membership.members().filter((m) => m.nodeId !== device.nodeId && m.state === 'online').flatMap((m) => ring.membership.addressesOf(m.nodeId))
    })),
    log: log.child({ component: 'nat' })
  })
  // with a public address of its own, this member answers STUN on the UDP port numbered as its libp2p TCP port
  const memberStun: Startable = (() => {
    let responder: StunResponder | undefined
    return {
      start: async () => {
        const port = memberStunTargets(net.listenAddresses())[0]?.port
        if (port === undefined) return
        const r = new StunResponder({ host: '0.0.0.0', ports: [port] })
        try { await r.start(); responder = r } catch (err) { log.warn({ port, err: String(err) }, 'cannot answer STUN on the UDP port of our public address; members measure their NAT at the relays only') }
      },
      stop: () => { responder?.stop(); responder = undefined }
    }
  })()
  // bootstrap peers (PEER_ID@HOST:PORT, multiaddrs): kept connected; a device still joining holds them
  // through its certificate exchange (they show no certificate of a pool it is in yet)
  const JOIN_HOLD_MS = 60_000
  const bootstrap = new BootstrapDialer(config.ring.bootstrapPeers.map((addr) => ({ addr, peerId: peerIdOf(addr) })), bootstrapBackoff(), {
    dial: async (addr, signal) => {
      const peerId = peerIdOf(addr)
      if (join.waitingForCertificate()) net.holdForJoin(peerId, JOIN_HOLD_MS)
      const remote = await net.dial(addr, signal)
      if (join.waitingForCertificate()) join.retryNow()
      return remote
    },
    connected: (peerId) => net.isConnected(peerId),
    hangUp: (peerId) => { net.hangUp(peerId) },
    clock,
    random,
    log: log.child({ component: 'bootstrap' })
  })
  const model = new ModelService(deps.model, { net, log: log.child({ component: 'model' }) })

  const controlPlane = config.controlPlane === undefined
    ? undefined
    : new ControlPlaneLink({
      url: config.controlPlane,
      nodeId: device.nodeId,
      privateKey: device.privateKey,
      pools: () => pools.all().flatMap((p) => p.cert === undefined ? [] : [{ poolId: p.poolId, rootPublicKey: poolTrust(p.record).rootPublicKey, certBytes: p.cert.bytes }]),
      net,
      log: log.child({ component: 'control-plane' }),
      clock
    })
  // distributed inference: the tensor plane's links, and jobs led here or served for other members
  const links = new TensorLinks({ net, selfId: device.nodeId, log: log.child({ component: 'tensor' }) }, { host: planeHost(config.ring.listen) })
  const jobs = new JobService({ net, links, models: new ModelHost(() => model.served(), config.threads), selfId: device.nodeId, log: log.child({ component: 'jobs' }) }, { ...lanJobDefaults(), partials: config.tensorPartials })

  const signer = ed25519Signer(device.privateKey, device.publicKey)
  const beacons = new BeaconService(config.beacon, {
    signer, clock, log, pools: () => pools.views(), onAccepted, onInterfacesChanged: () => { announcer.burst() }
  })
  const announcer = new Announcer(config.beacon, {
    beacons, pools, clock, unicastTargets, listenAddrs: () => net.listenAddresses(), capabilities: () => config.capabilities
  })
  const join = new CertJoin(config.join, {
    home: config.home, beacons, pools, clock, random, log,
    onCertInstalled: () => { pools.refresh(); net.reloadTrust(); announcer.burst() },
    // across a NAT no beacon reaches the admin: ask the connected bootstrap peers over libp2p too
    remote: {
      request: async (_poolId, bytes) => {
        for (const peerId of bootstrap.peerIds().filter((id) => net.isConnected(id))) {
          net.holdForJoin(peerId, JOIN_HOLD_MS)
          const answer = await requestCertificate(await net.openJoinStream(peerId, CERT_REQUEST_PROTOCOL, AbortSignal.timeout(10_000)), bytes).catch(() => undefined)
          if (answer?.kind === 'certificate') return { cert: answer.cert, from: peerId }
          if (answer !== undefined) log.debug({ peer: peerId, answer: answer.kind }, 'certificate request over libp2p answered')
        }
        return undefined
      }
    }
  })
  const certRequests = new CertRequestServer((poolId, req) => join.decide(poolId, req))
  // the admin's side of joins over libp2p, served once the network runs
  const certRequestService: Startable = {
    start: async () => { await net.handleJoinProtocol(CERT_REQUEST_PROTOCOL, async (stream, nodeId) => { await certRequests.handle(stream, nodeId) }, JOIN_HOLD_MS) },
    stop: () => {}
  }

  const status = (): AgentStatus => {
    return {
      pid: process.pid,
      nodeId: device.nodeId,
      name: device.name,
      home: config.home,
      startedAt: new Date(startedAt).toISOString(),
      beacon: beacons.stats(),
      join: { ...join.snapshot(), libp2p: { answered: certRequests.answered, drops: Object.fromEntries(certRequests.drops) } },
      pools: pools.all().map((p) => {
        const counts = { ONLINE: 0, SUSPECT: 0, OFFLINE: 0 }
        for (const peer of listPeers(p.poolId)) counts[peer.status]++
        const ring = net.ringStatus(p.poolId)
        return {
          poolId: p.poolId, name: p.record.name, role: p.record.role, state: p.record.state, certSerial: p.cert?.serial ?? null, peers: counts,
          ring: ring === undefined ? null : { epoch: ring.topology.epoch, hash: ring.topology.hash, members: ring.topology.members.length, converged: ring.converged }
        }
      }),
      net: {
        addresses: net.listenAddresses(), drops: Object.fromEntries(net.drops), tensorLinks: links.plane.linkTransports(), relays: config.ring.relays,
        holePunch: net.holePunchStats(), freshness: net.freshnessStats()
      },
      nat: natBlock({
        nat: nat.status(),
        listenAddresses: net.listenAddresses(),
        relays: net.relayStatus(),
        connections: net.connectionFacts(),
        members: pools.all().flatMap((p) => (net.ringOf(p.poolId)?.membership.members() ?? []).filter((m) => m.nodeId !== device.nodeId).map((m) => ({
          poolId: p.poolId,
          nodeId: m.nodeId,
          name: m.name,
          status: m.state === 'online' ? 'ONLINE' as const : m.state === 'suspect' ? 'SUSPECT' as const : 'OFFLINE' as const,
          heardAgoMs: m.lastHeardMs > 0 ? Math.max(0, Math.round(performance.now() - m.lastHeardMs)) : null
        }))),
        bootstrap: bootstrap.status(),
        now: clock()
      }),
      model: servedStatus(model.served()),
      modelFetch: model.fetchStatus(),
      controlPlane: controlPlane?.status() ?? null,
      api: ((url) => url === undefined ? null : { url })(gateway?.url())
    }
  }
  // a revoked member's last beacon would read ONLINE until it ages out; the pool's list says it is gone
  const revoked = (p: PeerView): boolean => {
    const record = pools.get(p.poolId)?.record
    const list = record === undefined ? undefined : recordRevocation(record)
    return list !== undefined && isRevoked(list, p.certSerial, p.nodeId)
  }
  // beacons say who is on the LAN; once a peer is in the ring, its liveness there is the fresher word
  const listPeers = (poolId?: string): PeerView[] => peers.list(poolId, clock(), config.peers).filter((p) => !revoked(p)).map((p) => {
    const live = net.livenessOf(p.poolId, p.nodeId)
    return live === undefined ? p : { ...p, status: live }
  })

  let resolveStopped!: () => void
  const stopped = new Promise<void>((resolve) => { resolveStopped = resolve })
  const api = new LocalApi(config.home, {
    status,
    peers: listPeers,
    ring: (poolId) => withUnits(net.ringReports(poolId), model.served()),
    stop: () => { void agent.stop() },
    inference: async (body, emit) => {
      const req = inferenceRequestSchema.safeParse(body)
      if (!req.success) return emit({ type: 'error', error: 'InferenceSettingError', usage: true, message: `bad inference request: ${req.error.issues[0]?.path.join('.') ?? ''} ${req.error.issues[0]?.message ?? ''}` })
      await jobs.run(req.data, emit)
    },
    inferenceStats: () => jobs.stats()
  })

  // the OpenAI-compatible API and dashboard (mesh start --api): every request is a job like mesh inference's
  const view: AgentView = { selfId: device.nodeId, startedAt, served: () => model.served(), poolIds: () => net.poolIds(), ringStatus: (p) => net.ringStatus(p) }
  const gateway = config.api === undefined
    ? undefined
    : openAiGateway({ ...gatewayDefaults(config.api.address), corsOrigins: config.api.corsOrigins }, config.home)({
      jobs,
      model: () => { const m = model.served(); return m === null ? undefined : gatewayModel(m, startedAt) },
      notReady: () => whyNotReady(view),
      health: () => healthOf(view),
      dashboard: () => ({ status: status(), peers: listPeers(), ring: withUnits(net.ringReports(), model.served()), stats: jobs.stats(), memory: hostMemory() }),
      log: log.child({ component: 'api' })
    })

  // background chores: re-read the pool store, save the peer cache
  const chores: Startable = (() => {
    let poll: NodeJS.Timeout | undefined
    let save: NodeJS.Timeout | undefined
    const saveCache = (): void => {
      if (!cacheDirty) return
      cacheDirty = false
      try { savePeerCache(config.home, peers.records()) } catch (err) {
        if (!(err instanceof MeshError)) throw err
        warner.warn('peer-cache', clock(), { err: err.message }, 'cannot save the peer cache')
      }
    }
    return {
      start: () => {
        poll ??= setInterval(() => {
          if (pools.refresh() === 'changed') { log.info('pool store changed'); announcer.burst() }
          join.poolsChanged()
        }, POOL_POLL_MS)
        save ??= setInterval(saveCache, CACHE_SAVE_MS)
      },
      stop: () => {
        clearInterval(poll); clearInterval(save); poll = undefined; save = undefined
        saveCache()
      }
    }
  })()

  // in start order; the API comes last, so an answering API means the agent is fully up
  const components: Array<[string, Startable]> = [
    ['net', net],
    ['cert-requests', certRequestService],
    ['member-stun', memberStun],
    ['nat', nat],
    ['model', model],
    ...(controlPlane === undefined ? [] : [['control-plane', controlPlane] as [string, Startable]]),
    ['tensor', links],
    ['jobs', jobs],
    ['beacons', beacons],
    ['announcer', announcer],
    ['join', join],
    ['bootstrap', bootstrap],
    ['chores', chores],
    // before the local API: once `mesh start` hears the agent answer, the gateway listens too
    ...(gateway === undefined ? [] : [['gateway', gateway] as [string, Startable]]),
    ['api', api]
  ]
  const started: Array<[string, Startable]> = []
  let state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new'

  const agent: Agent = {
    status,
    peers: listPeers,
    stopped,
    async start () {
      if (state !== 'new') return
      state = 'starting'
      const stale = claimPidFile(config.home)
      if (stale !== undefined) log.warn({ stalePid: stale }, 'removed the pid file of an agent that is gone (crashed?)')
      pools.refresh()
      try {
        for (const p of loadPeerCache(config.home, clock())) { peers.remember(p); net.addPeerAddresses(p.nodeId, p.listenAddrs) }
      } catch (err) {
        if (!(err instanceof MeshError)) throw err
        log.warn({ err: err.message }, 'ignoring the peer cache; it will be rewritten')
      }
      try {
        for (const entry of components) {
          await entry[1].start()
          started.push(entry)
        }
      } catch (err) {
        await agent.stop()
        throw err
      }
      state = 'running'
      log.info({ nodeId: device.nodeId, pools: pools.all().map((p) => p.poolId) }, 'agent started')
    },
    async stop () {
      if (state === 'stopping' || state === 'stopped') return await stopped
      state = 'stopping'
      for (const [name, c] of started.reverse()) {
        try { await c.stop() } catch (err) { log.error({ component: name, err }, 'error while stopping') }
      }
      started.length = 0
      releasePidFile(config.home)
      state = 'stopped'
      log.info('agent stopped')
      resolveStopped()
    }
  }
  return agent
}
