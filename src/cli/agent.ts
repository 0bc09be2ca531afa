import type { Argv } from 'yargs'
import { callAgent } from '../agent/api/client.js'
import { absolutePaths, type AgentOverrides } from '../agent/config.js'
import type { AgentStatus } from '../agent/agent.js'
import { ModelFetchFailedError } from '../agent/errors.js'
import { checkStart, spawnAgent, stopAgent, type StartPlan } from '../agent/daemon.js'
import { agentLogFile } from '../agent/log.js'
import type { PeerView } from '../agent/peers.js'
import { peerPaths } from './nat-format.js'
import { resolvePoolId } from '../pool/index.js'
import type { MeshCommand } from './commands.js'
import type { CliIO, GlobalArgs } from '../process/io.js'

interface StartArgs extends GlobalArgs {
  foreground: boolean
  'beacon-port'?: number
  'beacon-group'?: string
  'beacon-interval'?: number
  interface?: string[]
  bootstrap?: string[]
  'multicast-loopback'?: boolean
  'shard-weights'?: 'even' | 'capacity'
  model?: string
  tokenizer?: string
  'model-sha256'?: string
  threads?: number
  'tensor-partials'?: 'exact' | 'q8'
  relay?: string[]
  'control-plane'?: string
  api?: string
  'api-cors'?: string[]
}

function overrides (a: StartArgs): AgentOverrides {
  return {
    modelSha256: a['model-sha256'],
    threads: a.threads,
    tensorPartials: a['tensor-partials'],
    ...absolutePaths({ model: a.model, tokenizer: a.tokenizer }, process.cwd()),
    beaconPort: a['beacon-port'],
    beaconGroup: a['beacon-group'],
    beaconIntervalMs: a['beacon-interval'],
    interfaces: a.interface,
    bootstrap: a.bootstrap,
    multicastLoopback: a['multicast-loopback'],
    shardWeights: a['shard-weights'],
    relays: a.relay,
    controlPlane: a['control-plane'],
    api: a.api,
    apiCors: a['api-cors']
  }
}

export const startCommand: MeshCommand = (io) => ({
  command: 'start',
  describe: 'run the agent daemon (LAN beacons, certificate join, libp2p pool network and ring, local API)',
  builder: (y: Argv<GlobalArgs>) => y
    .option('foreground', { type: 'boolean', default: false, describe: 'stay attached; Ctrl+C stops the agent' })
    .option('beacon-port', { type: 'number', describe: 'UDP port of the LAN beacons (env MESH_BEACON_PORT)', defaultDescription: '42424' })
    .option('beacon-group', { type: 'string', describe: 'IPv4 multicast group of the beacons (env MESH_BEACON_GROUP)', defaultDescription: '239.192.0.1' })
    .option('beacon-interval', { type: 'number', describe: 'ms between announces (env MESH_BEACON_INTERVAL_MS)', defaultDescription: '5000' })
    .option('interface', { type: 'string', array: true, describe: 'IPv4 address of an interface to use, repeatable (env MESH_BEACON_INTERFACES)', defaultDescription: 'every multicast-capable interface' })
    .option('bootstrap', { type: 'string', array: true, describe: 'repeatable: HOST[:PORT] to announce to by unicast, for networks without multicast; or a libp2p peer to keep connected, PEER_ID@HOST:PORT or a multiaddr ending in /p2p/PEER_ID (relayed ones too), which must prove that id (env MESH_BOOTSTRAP)' })
    .option('relay', { type: 'string', array: true, describe: 'mesh-relay address (multiaddr ending in /p2p/ID, as mesh-relay prints it), repeatable: reserve a slot there and reach members that cannot be dialled directly through it (env MESH_RELAYS)' })
    .option('control-plane', { type: 'string', describe: 'mesh-control-plane URL (http://HOST:PORT): register there, heartbeat its HTTP ring, and dial the members it lists, for networks where beacons do not reach (env MESH_CONTROL_PLANE)' })
    .option('multicast-loopback', { type: 'boolean', describe: 'hear own multicast, for several agents on one host (env MESH_MULTICAST_LOOPBACK=1)' })
    .option('shard-weights', { choices: ['even', 'capacity'] as const, describe: 'split the ring\'s 8192 columns evenly, or by each member\'s capacity; every member of a pool must agree (env MESH_SHARD_WEIGHTS)', defaultDescription: 'even' })
    .option('model', { type: 'string', describe: 'the model this member serves: a llama2.c checkpoint (with --tokenizer) or a GGUF file; members serving another model are left out of its jobs (env MESH_MODEL)', defaultDescription: 'bundled stories260K' })
    .option('tokenizer', { type: 'string', describe: 'llama2.c tokenizer.bin for --model (env MESH_TOKENIZER)', defaultDescription: 'bundled tok512.bin' })
    .option('model-sha256', { type: 'string', describe: 'sha256 of the model file, a llama2.c checkpoint or a GGUF (mesh model info shows it): if this device lacks it, fetch it from a pool member that serves it into MESH_HOME/models/<sha256>.bin or .gguf; no --model or --tokenizer needed for a GGUF (env MESH_MODEL_SHA256)' })
    .option('tensor-partials', { choices: ['exact', 'q8'] as const, describe: 'how the partial sums of jobs this member leads travel: exact (as computed: float32 for llama2.c, float64 for GGUF, so a ring gives one device\'s output) or 8-bit blocks (0.28x the bytes of float32, less accurate: bench/gguf-sync.ts) (env MESH_TENSOR_PARTIALS)', defaultDescription: 'exact' })
    .option('threads', { type: 'number', describe: 'threads for this member\'s share of each job; give fewer when several agents share this machine (env MESH_THREADS)', defaultDescription: 'all cores' })
    .option('api', { type: 'string', describe: 'serve the OpenAI-compatible API and the dashboard on [HOST:]PORT; beyond 127.0.0.1 an API key must exist (mesh api-key create) (env MESH_API)', defaultDescription: 'off; host 127.0.0.1' })
    .option('api-cors', { type: 'string', array: true, describe: 'a browser origin (https://host:port) allowed to call the API, repeatable (env MESH_API_CORS)', defaultDescription: 'none' }),
  handler: async (argv) => {
    const a = argv as unknown as StartArgs
    if (a.foreground) {
      // loaded only here: the agent and everything it runs are not needed by the other commands
      const { runForeground } = await import('../agent/foreground.js')
      await runForeground(a.home, overrides(a), {
        logToStderr: true,
        onReady: (pid) => { io.err(`mesh agent running (pid ${pid}); Ctrl+C stops it`) }
      })
      return
    }
    const s = await startAgent(await checkStart(a.home, overrides(a)), io, a.json)
    if (a.json) io.out(JSON.stringify(startedJson(s, a.home)))
  }
})

/**
 * Run the agent that `checkStart` cleared, say so (text mode), and follow its fetch of a missing
 * model until it serves it. Shared by `mesh start` and `mesh pool-join --start`.
 */
export async function startAgent (plan: StartPlan, io: CliIO, json: boolean): Promise<AgentStatus> {
  const started = await spawnAgent(plan)
  if (!json) io.out(`mesh agent started (pid ${started.pid}, node ${started.nodeId}); log: ${agentLogFile(plan.home)}`)
  if (!json && started.api !== null) io.out(`OpenAI-compatible API at ${started.api.url}/v1, dashboard at ${started.api.url}/`)
  return started.modelFetch === null ? started : await followModelFetch(plan.home, started, io)
}

/** What `--json` shows of an agent just started. */
export function startedJson (s: AgentStatus, home: string): { pid: number, nodeId: string, home: string, log: string, model: AgentStatus['model'], api: AgentStatus['api'] } {
  return { pid: s.pid, nodeId: s.nodeId, home: s.home, log: agentLogFile(home), model: s.model, api: s.api }
}

/** how often `mesh start` asks the agent how its model fetch is going */
const FETCH_POLL_MS = 250

/**
 * Show the agent's fetch of a missing model on stderr until it serves it: a line per 10 %, and
 * each member it could not use. Ctrl+C leaves the agent running (and fetching).
 */
async function followModelFetch (home: string, first: AgentStatus, io: CliIO): Promise<AgentStatus> {
  let saidWaiting = false
  let lastError: string | null = null
  let shown = { from: '', tenth: -1 }
  for (let s = first; ; s = await callAgent<AgentStatus>(home, 'GET', '/v1/status')) {
    const f = s.modelFetch
    if (f === null) return s
    const model = f.sha256.slice(0, 12)
    if (f.error !== null && f.error !== lastError && f.state !== 'failed') io.err(`could not use ${f.error}; trying another member`)
    lastError = f.error
    if (f.state === 'done') {
      io.err(`model ${model} fetched from ${f.from ?? '?'} and verified (${mib(f.total)} MiB); serving model ${s.model?.id.slice(0, 12) ?? '?'}`)
      return s
    }
    if (f.state === 'failed') throw new ModelFetchFailedError(`the fetched model cannot be served: ${f.error ?? 'unknown error'}; see ${agentLogFile(home)}`)
    if (f.state === 'waiting' && !saidWaiting) {
      io.err(`model ${model} is not here; waiting for a pool member that serves it (Ctrl+C leaves the agent fetching)`)
      saidWaiting = true
    }
    if (f.state === 'fetching' && f.total > 0) {
      const tenth = Math.floor((10 * f.read) / f.total)
      if (f.from !== shown.from || tenth > shown.tenth) {
        shown = { from: f.from ?? '', tenth }
        io.err(`fetching model ${model} from ${f.from ?? '?'}: ${10 * tenth}% (${mib(f.read)}/${mib(f.total)} MiB)`)
      }
    }
    await new Promise((resolve) => setTimeout(resolve, FETCH_POLL_MS))
  }
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)

export const stopCommand: MeshCommand = (io) => ({
  command: 'stop',
  describe: 'stop the agent daemon',
  builder: (y: Argv<GlobalArgs>) => y,
  handler: async (argv) => {
    const a = argv as unknown as GlobalArgs
    const pid = await stopAgent(a.home)
    if (a.json) io.out(JSON.stringify({ stopped: pid !== undefined, pid: pid ?? null }))
    else io.out(pid === undefined ? 'mesh agent is not running; nothing to stop' : `mesh agent stopped (pid ${pid})`)
  }
})

interface PeersArgs extends GlobalArgs { 'pool-id'?: string }

function ago (ms: number): string {
  if (ms < 0) return 'never'
  if (ms < 60_000) return `${Math.round(ms / 1000)}s ago`
  if (ms < 3600_000) return `${Math.round(ms / 60_000)}m ago`
  return `${Math.round(ms / 3600_000)}h ago`
}

/** `paths`: each member's path (direct-lan, direct-wan, hole-punched, relayed) as the agent's NAT block says; '-' when not connected. */
export function formatPeers (peers: PeerView[], now: number, paths: ReadonlyMap<string, string> = new Map()): string {
  if (peers.length === 0) return 'no peers seen yet'
  const rows = [['NODE ID', 'NAME', 'ADDRESS', 'STATUS', 'LAST SEEN', 'PATH'],
    ...peers.map((p) => [p.nodeId, p.name, p.address, p.status, p.lastSeen === 0 ? 'never (cached)' : ago(now - p.lastSeen), paths.get(p.nodeId) ?? '-'])]
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n')
}

export const poolPeersCommand: MeshCommand = (io) => ({
  command: 'pool-peers',
  describe: 'peers of a pool seen on the LAN: node id, name, address, ONLINE/SUSPECT/OFFLINE, last seen',
  builder: (y: Argv<GlobalArgs>) => y
    .option('pool-id', { type: 'string', describe: 'Pool ID or a unique prefix of at least 16 hex digits', demandOption: true }),
  handler: async (argv) => {
    const a = argv as unknown as PeersArgs
    const poolId = resolvePoolId(a.home, a['pool-id'] ?? '')
    const seen = await callAgent<PeerView[]>(a.home, 'GET', `/v1/peers?pool=${poolId}`)
    const status = await callAgent<AgentStatus>(a.home, 'GET', '/v1/status')
    const peers = withRingMembers(seen, status, poolId)
    const paths = peerPaths(status.nat, poolId)
    io.out(a.json ? JSON.stringify(peers.map((p) => ({ ...p, path: paths.get(p.nodeId) ?? null }))) : formatPeers(peers, Date.now(), paths))
  }
})

/**
 * Beacon peers, then ring members no beacon came from (across a NAT, through a relay): their
 * address is the connection's, their last sight the last heartbeat.
 */
function withRingMembers (seen: PeerView[], status: AgentStatus, poolId: string): PeerView[] {
  const known = new Set(seen.map((p) => p.nodeId))
  const extra = status.nat.members.filter((m) => m.poolId === poolId && !known.has(m.nodeId)).map((m): PeerView => ({
    poolId, nodeId: m.nodeId, name: m.name, publicKey: '', roles: [], certSerial: '', address: m.address ?? '-', port: 0, unicast: false,
    listenAddrs: [], capabilities: [], lastSeen: m.lastSeen === null ? 0 : Date.parse(m.lastSeen), status: m.status
  }))
  return [...seen, ...extra]
}

/** What `pool-status --json` shows of the running agent (null when none runs). */
export function liveAgentJson (s: AgentStatus | undefined): Omit<AgentStatus, 'pools'> | null {
  if (s === undefined) return null
  const { pools: _pools, ...rest } = s
  return rest
}

export function agentStatusText (s: AgentStatus | undefined): string {
  if (s === undefined) return 'Agent: not running (start it with `mesh start`)'
  const b = s.beacon
  const dropped = Object.entries(b.drops).filter(([, n]) => n > 0)
  const total = dropped.reduce((sum, [, n]) => sum + n, 0)
  return `Agent: running (pid ${s.pid}) on ${b.group}:${b.port} via ${b.interfaces.join(', ') || 'no multicast interface'}` +
    `; beacons sent ${b.sent}, received ${b.received}, accepted ${b.accepted}, dropped ${total}` +
    (dropped.length > 0 ? ` (${dropped.map(([r, n]) => `${r} ${n}`).join(', ')})` : '')
}

/** The pool's ring in pool-status: '' when the agent is not running. */
export function ringLine (ring: AgentStatus['pools'][number]['ring'] | undefined): string {
  if (ring === undefined) return ''
  if (ring === null) return '\n  Ring: not in it (no valid certificate yet)'
  return `\n  Ring: epoch ${ring.epoch}, ${ring.members} member${ring.members === 1 ? '' : 's'}, ${ring.converged ? 'converged' : 'not converged yet'} (mesh ring-status)`
}

export function peersLine (peers: Record<string, number> | null | undefined): string {
  if (peers === undefined) return ''
  if (peers === null) return '\n  Peers: none seen yet'
  return `\n  Peers: ${peers.ONLINE ?? 0} online, ${peers.SUSPECT ?? 0} suspect, ${peers.OFFLINE ?? 0} offline (mesh pool-peers)`
}
