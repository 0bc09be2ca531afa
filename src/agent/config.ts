import net from 'node:net'
import { PARTIAL_FORMATS, type PartialFormat } from '../inference/tensor-plane/q8-partials.js'
import os from 'node:os'
import path from 'node:path'
import { z } from 'zod'
import { CorruptFileError, readJsonFile, writeJsonAtomic } from '../atomic-file.js'
import { UsageError } from '../errors.js'
import type { ShardMode } from '../ring/assign.js'
import { BUNDLED_MODEL, type ModelFiles, type ServedModel } from '../inference/served.js'
import type { UnicastTarget } from './beacon/transport.js'
import { parseBootstrapEntry, splitBootstrap } from './net/bootstrap.js'
import { parseRelayAddress } from './net/relays.js'
import { parseApiAddress, type ApiAddress } from './api/openai/address.js'

/**
 * Agent configuration: plain data, one type per subsystem, LAN defaults with their reasons.
 * Sources, later wins: lanDefaults() ← MESH_HOME/agent.json ← environment ← `mesh start` flags.
 */

export interface BeaconConfig {
  /** administratively scoped (239/8): never routed off the site */
  group: string
  port: number
  /** announce period; peers turn SUSPECT after 3 missed announces */
  intervalMs: number
  /** extra announces right after start or a change, so a new device is seen within about a second */
  burstOffsetsMs: readonly number[]
  /** 1: stays on the LAN segment */
  ttl: number
  /** hear our own multicast: only when several agents share one network namespace (tests) */
  loopback: boolean
  /** IPv4 addresses to use; undefined = every multicast-capable interface, re-read every interfacePollMs */
  interfaces: string[] | undefined
  interfacePollMs: number
  /** accepted clock difference; beyond it a beacon is stale or from the future (replays need a fresh timestamp) */
  maxSkewMs: number
  /** unicast announces to these too, for networks that block multicast */
  bootstrap: UnicastTarget[]
}

export interface PeerConfig {
  /** no announce for this long: SUSPECT (3 intervals: one lost packet is not a failure) */
  suspectAfterMs: number
  /** OFFLINE after this long (6 intervals) */
  offlineAfterMs: number
}

export interface JoinConfig {
  /** first certificate request goes out at once; retries wait initial × factor^n, capped, ±jitter */
  requestInitialMs: number
  requestFactor: number
  requestMaxMs: number
  requestJitter: number
  /** an admin answers one sender at most this often (the cached answer included) */
  answerMinIntervalMs: number
  /** how often the admin re-reads the pool store for manual approvals (`mesh pool-approve`) */
  approvalPollMs: number
}

export interface RingConfig {
  /** libp2p listen multiaddrs; what is announced is what the node really bound */
  listen: string[]
  /** how the ring splits the 8192 columns: evenly, or by each member's measured capacity */
  shardMode: ShardMode
  /** mesh-relay multiaddrs (…/p2p/RELAY_ID): a slot is reserved on each, members we cannot dial are reached through them */
  relays: string[]
  /** libp2p peers from --bootstrap (multiaddrs ending in /p2p/ID): kept connected, asked for certificates while we have none */
  bootstrapPeers: string[]
}

/**
 * The model this member serves in its pools' jobs (announced by id in its heartbeats). With
 * `sha256`, a model file the member lacks is fetched from a pool member that serves it, into
 * MESH_HOME/models/<sha256>.bin or .gguf (the .bin path is then the default checkpointPath;
 * model-files.ts localCheckpoint looks for both).
 */
export interface ServeConfig extends ModelFiles {
  readonly sha256?: string | undefined
}

/** Where a model fetched from the pool is kept: named by its sha256, with its format's extension. */
export const fetchedModelPath = (home: string, sha256: string, format: ServedModel['format']): string =>
  path.join(home, 'models', `${sha256}.${format === 'gguf' ? 'gguf' : 'bin'}`)

/** The OpenAI-compatible gateway and dashboard (mesh start --api); undefined = none. */
export interface ApiConfig {
  /** loopback unless a host is given; beyond loopback an API key must exist */
  address: ApiAddress
  /** browser origins allowed to call it (CORS); none by default */
  corsOrigins: string[]
}

export interface AgentConfig {
  home: string
  beacon: BeaconConfig
  peers: PeerConfig
  join: JoinConfig
  ring: RingConfig
  model: ServeConfig
  /** threads for this member's share of every job (its kernels); several agents sharing a machine want fewer */
  threads: number
  /** how the partial sums of the jobs this member leads travel: exact (as computed) or 8-bit blocks */
  tensorPartials: PartialFormat
  /** mesh-control-plane base URL: register, join its HTTP ring, dial the members it lists; undefined = none */
  controlPlane: string | undefined
  capabilities: string[]
  api: ApiConfig | undefined
}

export const DEFAULT_BEACON_PORT = 42424

export function lanDefaults (home: string): AgentConfig {
  return {
    home,
    beacon: {
      group: '239.192.0.1',
      port: DEFAULT_BEACON_PORT,
      intervalMs: 5000,
      burstOffsetsMs: [0, 300, 1000],
      ttl: 1,
      loopback: false,
      interfaces: undefined,
      interfacePollMs: 5000,
      maxSkewMs: 30_000,
      bootstrap: []
    },
    peers: { suspectAfterMs: 15_000, offlineAfterMs: 30_000 },
    join: {
      requestInitialMs: 500,
      requestFactor: 2,
      requestMaxMs: 30_000,
      requestJitter: 0.2,
      answerMinIntervalMs: 250,
      approvalPollMs: 1000
    },
    // every IPv4 interface, a free TCP port: several agents can share a host
    ring: { listen: ['/ip4/0.0.0.0/tcp/0'], shardMode: 'even', relays: [], bootstrapPeers: [] },
    // the bundled stories260K: every fresh install serves the same model, so a new pool just works
    model: BUNDLED_MODEL,
    threads: os.availableParallelism(),
    // exact by default: q8 partials leave the single-device accuracy bound on most goldens (bench/gguf-sync.ts)
    tensorPartials: 'exact',
    controlPlane: undefined,
    capabilities: [],
    // the gateway runs jobs on the whole pool: only when asked for
    api: undefined
  }
}

/** What agent.json, the environment and flags may set. */
export interface AgentOverrides {
  beaconPort?: number | undefined
  beaconGroup?: string | undefined
  beaconIntervalMs?: number | undefined
  interfaces?: string[] | undefined
  bootstrap?: string[] | undefined
  multicastLoopback?: boolean | undefined
  shardWeights?: ShardMode | undefined
  /** model files; absolute once read (agent.json paths are relative to MESH_HOME, others to the working directory) */
  model?: string | undefined
  tokenizer?: string | undefined
  /** sha256 of the checkpoint: fetch it from the pool when the file is missing */
  modelSha256?: string | undefined
  threads?: number | undefined
  tensorPartials?: PartialFormat | undefined
  relays?: string[] | undefined
  controlPlane?: string | undefined
  /** [HOST:]PORT of the OpenAI-compatible API */
  api?: string | undefined
  apiCors?: string[] | undefined
}

export function agentConfigFile (home: string): string { return path.join(home, 'agent.json') }

const FileSchema = z.strictObject({
  beaconPort: z.number().int().min(1).max(65535).optional(),
  beaconGroup: z.string().optional(),
  beaconIntervalMs: z.number().int().min(100).max(600_000).optional(),
  interfaces: z.array(z.string()).optional(),
  bootstrap: z.array(z.string()).optional(),
  multicastLoopback: z.boolean().optional(),
  shardWeights: z.enum(['even', 'capacity']).optional(),
  model: z.string().min(1).optional(),
  tokenizer: z.string().min(1).optional(),
  modelSha256: z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 is 64 lowercase hex digits').optional(),
  threads: z.number().int().min(1).max(1024).optional(),
  tensorPartials: z.enum(PARTIAL_FORMATS).optional(),
  relays: z.array(z.string()).optional(),
  controlPlane: z.string().optional(),
  api: z.string().optional(),
  apiCors: z.array(z.string()).optional()
})

/** Overrides as plain data (agent.json, or what `mesh start` hands its detached agent); undefined if invalid. */
export function parseOverrides (raw: unknown): AgentOverrides | { problem: string } {
  const parsed = FileSchema.safeParse(raw)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  return { problem: `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}` }
}

export function readAgentFile (home: string): AgentOverrides {
  const file = agentConfigFile(home)
  const raw = readJsonFile(file)
  if (raw === undefined) return {}
  const parsed = parseOverrides(raw)
  if ('problem' in parsed) throw new CorruptFileError(file, parsed.problem)
  return { ...parsed, ...absolutePaths(parsed, home) }
}

/**
 * Add bootstrap entries to agent.json (`mesh pool-join --bootstrap`), keeping every other setting;
 * each is checked first, and a corrupt agent.json is reported, never overwritten. Returns whether
 * the file changed.
 */
export function addBootstrapToAgentFile (home: string, entries: readonly string[]): boolean {
  for (const e of entries) parseBootstrapEntry(e, DEFAULT_BEACON_PORT)
  const file = agentConfigFile(home)
  const raw = readJsonFile(file)
  const current = raw === undefined ? {} : parseOverrides(raw)
  if ('problem' in current) throw new CorruptFileError(file, current.problem)
  const have = current.bootstrap ?? []
  const added = entries.map((e) => e.trim()).filter((e, i, all) => !have.includes(e) && all.indexOf(e) === i)
  if (added.length === 0) return false
  writeJsonAtomic(file, { ...(raw as Record<string, unknown>), bootstrap: [...have, ...added] }, 0o600)
  return true
}

/** Model paths made absolute against `base`: the detached agent must not depend on a working directory. */
export function absolutePaths (o: AgentOverrides, base: string): Pick<AgentOverrides, 'model' | 'tokenizer'> {
  return {
    model: o.model === undefined ? undefined : path.resolve(base, o.model),
    tokenizer: o.tokenizer === undefined ? undefined : path.resolve(base, o.tokenizer)
  }
}

export function envOverrides (env: NodeJS.ProcessEnv): AgentOverrides {
  const int = (name: string): number | undefined => {
    const v = env[name]
    if (v === undefined || v === '') return undefined
    if (!/^\d+$/.test(v)) throw new UsageError(`${name}=${v} is not a whole number`)
    return Number(v)
  }
  const list = (name: string): string[] | undefined => {
    const v = env[name]
    return v === undefined || v === '' ? undefined : v.split(',').map((s) => s.trim()).filter((s) => s !== '')
  }
  return {
    beaconPort: int('MESH_BEACON_PORT'),
    beaconGroup: env.MESH_BEACON_GROUP === '' ? undefined : env.MESH_BEACON_GROUP,
    beaconIntervalMs: int('MESH_BEACON_INTERVAL_MS'),
    interfaces: list('MESH_BEACON_INTERFACES'),
    bootstrap: list('MESH_BOOTSTRAP'),
    multicastLoopback: env.MESH_MULTICAST_LOOPBACK === undefined || env.MESH_MULTICAST_LOOPBACK === '' ? undefined : env.MESH_MULTICAST_LOOPBACK === '1',
    shardWeights: shardMode(env.MESH_SHARD_WEIGHTS),
    ...absolutePaths({ model: nonEmpty(env.MESH_MODEL), tokenizer: nonEmpty(env.MESH_TOKENIZER) }, process.cwd()),
    modelSha256: nonEmpty(env.MESH_MODEL_SHA256),
    threads: int('MESH_THREADS'),
    tensorPartials: partialFormat(env.MESH_TENSOR_PARTIALS),
    relays: list('MESH_RELAYS'),
    controlPlane: env.MESH_CONTROL_PLANE === '' ? undefined : env.MESH_CONTROL_PLANE,
    api: nonEmpty(env.MESH_API),
    apiCors: list('MESH_API_CORS')
  }
}

const nonEmpty = (v: string | undefined): string | undefined => v === '' ? undefined : v

function partialFormat (v: string | undefined): PartialFormat | undefined {
  if (v === undefined || v === '') return undefined
  if (v !== 'exact' && v !== 'q8') throw new UsageError(`MESH_TENSOR_PARTIALS=${v} is not one of exact, q8`)
  return v
}

function shardMode (v: string | undefined): ShardMode | undefined {
  if (v === undefined || v === '') return undefined
  if (v !== 'even' && v !== 'capacity') throw new UsageError(`MESH_SHARD_WEIGHTS=${v} is not one of even, capacity`)
  return v
}

/** A beacon target HOST[:PORT], HOST an IPv4 address or a host name; the port defaults to the beacon port. */
export function parseBootstrap (text: string, defaultPort: number): UnicastTarget {
  const e = parseBootstrapEntry(text, defaultPort)
  if (e.kind !== 'beacon') throw new UsageError(`bootstrap address ${JSON.stringify(text)} is a libp2p peer, not a beacon target HOST[:PORT]`)
  return { host: e.host, port: e.port }
}

function serveConfig (home: string, checkpoint: string | undefined, tokenizerPath: string, sha256: string | undefined): ServeConfig {
  if (sha256 === undefined) return { checkpointPath: checkpoint ?? BUNDLED_MODEL.checkpointPath, tokenizerPath }
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new UsageError(`model sha256 ${sha256} is not 64 lowercase hex digits (see mesh model info)`)
  return { checkpointPath: checkpoint ?? fetchedModelPath(home, sha256, 'llama2c'), tokenizerPath, sha256 }
}

function threadCount (n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new UsageError(`threads (--threads, MESH_THREADS or agent.json) must be a whole number from 1 to 1024, not ${n}`)
  return n
}

/** http(s)://HOST[:PORT] as mesh-control-plane prints it; a trailing slash is dropped. */
export function parseControlPlaneUrl (text: string): string {
  let url: URL | undefined
  try { url = new URL(text.trim()) } catch { url = undefined }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search !== '' || url.username !== '') {
    throw new UsageError(`control plane ${JSON.stringify(text)} is not an http(s)://HOST:PORT URL (mesh-control-plane prints it, e.g. http://192.168.1.10:8080)`)
  }
  return url.origin
}

/** A browser origin as the Origin header spells it: scheme://host[:port], nothing after. */
function parseOrigin (text: string): string {
  let url: URL | undefined
  try { url = new URL(text.trim()) } catch { url = undefined }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== text.trim().replace(/\/$/, '')) {
    throw new UsageError(`CORS origin ${JSON.stringify(text)} is not an origin like https://chat.example:3000 (scheme, host, port; no path)`)
  }
  return url.origin
}

function checkGroup (group: string): string {
  const first = Number(group.split('.')[0])
  if (!net.isIPv4(group) || first < 224 || first > 239) throw new UsageError(`beacon group ${group} is not an IPv4 multicast address (224.0.0.0-239.255.255.255)`)
  return group
}

function checkPort (port: number, what: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`${what} ${port} is not a port (1-65535)`)
  return port
}

/** Apply override layers in order (later wins) to the LAN defaults; never mutates its inputs. */
export function resolveAgentConfig (home: string, ...layers: AgentOverrides[]): AgentConfig {
  const base = lanDefaults(home)
  const pick = <K extends keyof AgentOverrides>(k: K): AgentOverrides[K] =>
    layers.reduce<AgentOverrides[K]>((acc, l) => l[k] ?? acc, undefined)
  const port = checkPort(pick('beaconPort') ?? base.beacon.port, 'beacon port')
  const intervalMs = pick('beaconIntervalMs') ?? base.beacon.intervalMs
  if (!Number.isInteger(intervalMs) || intervalMs < 100) throw new UsageError(`beacon interval ${intervalMs} ms is too short (at least 100)`)
  const interfaces = pick('interfaces')
  for (const a of interfaces ?? []) if (!net.isIPv4(a)) throw new UsageError(`interface address ${a} is not an IPv4 address`)
  // bootstrap entries add up across layers (agent.json and --bootstrap both count)
  const bootstrap = splitBootstrap(layers.flatMap((l) => l.bootstrap ?? []), port)
  return {
    ...base,
    beacon: {
      ...base.beacon,
      group: checkGroup(pick('beaconGroup') ?? base.beacon.group),
      port,
      intervalMs,
      interfaces,
      loopback: pick('multicastLoopback') ?? base.beacon.loopback,
      bootstrap: bootstrap.beacons
    },
    peers: { suspectAfterMs: 3 * intervalMs, offlineAfterMs: 6 * intervalMs },
    ring: {
      ...base.ring,
      shardMode: pick('shardWeights') ?? base.ring.shardMode,
      // relays add up across layers, like bootstrap addresses
      relays: [...new Set(layers.flatMap((l) => l.relays ?? []).map(parseRelayAddress))],
      bootstrapPeers: bootstrap.peers.map((p) => p.addr)
    },
    model: serveConfig(home, pick('model'), pick('tokenizer') ?? base.model.tokenizerPath, pick('modelSha256')),
    threads: threadCount(pick('threads') ?? base.threads),
    tensorPartials: pick('tensorPartials') ?? base.tensorPartials,
    controlPlane: ((u) => u === undefined ? undefined : parseControlPlaneUrl(u))(pick('controlPlane')),
    api: ((a) => a === undefined ? undefined : { address: parseApiAddress(a), corsOrigins: (pick('apiCors') ?? []).map(parseOrigin) })(pick('api'))
  }
}
