/** `mesh pool-create`, `pool-join`, `pool-list`, `pool-status`: pools from this device's side. */
import type { Argv } from 'yargs'
import { createPool } from '../pool/admin.js'
import { loadDevice } from '../pool/identity.js'
import { joinPool } from '../pool/member.js'
import { parsePolicy, type PoolPolicy } from '../pool/policy.js'
import { summarizePool } from '../pool/status.js'
import { listPoolRecords, readPoolRecord, resolvePoolId } from '../pool/store.js'
import { addBootstrapToAgentFile, DEFAULT_BEACON_PORT, readAgentFile } from '../agent/config.js'
import { checkStart, runningAgent } from '../agent/daemon.js'
import { parseBootstrapEntry } from '../agent/net/bootstrap.js'
import { AgentNotRunningError } from '../agent/errors.js'
import { waitForCertificate } from '../agent/wait.js'
import type { AgentStatus } from '../agent/agent.js'
import type { PoolSummary } from '../pool/status.js'
import { agentStatusText, liveAgentJson, peersLine, ringLine, startAgent, startedJson } from './agent.js'
import { natText } from './nat-format.js'
import { fromEnv, handler, optionalSeconds, optionalString, optionalStrings, requiredString } from './args.js'
import type { MeshCommand } from './commands.js'
import type { CliIO, GlobalArgs } from '../process/io.js'
import { livePoolListText, poolListText, poolStatusText, STORED_ONLY_NOTE } from './pool-format.js'

/** The loud warning of the `open` policy, on stderr so --json output stays clean. */
export function warnIfOpen (policy: PoolPolicy, io: CliIO): void {
  if (policy === 'open') io.err('mesh: WARNING: policy "open" signs a certificate for ANY device on the LAN that asks; use it for demos only')
}

export const poolCreateCommand: MeshCommand = (io) => ({
  command: 'pool-create',
  describe: 'make a pool with this device as its admin; prints Pool ID, root public key and join token',
  builder: (y: Argv<GlobalArgs>) => y
    .option('name', { type: 'string', describe: 'the pool name (env POOL_NAME)', default: fromEnv('POOL_NAME') })
    .option('policy', { type: 'string', default: 'token', describe: 'how join requests are signed: token (must know the join token), manual (mesh pool-approve), open (anyone; demos only)' }),
  handler: handler<{ name?: unknown, policy: unknown }>((args) => {
    const policy = parsePolicy(requiredString(args.policy, 'policy'))
    const { record, rootPublicKey, joinToken } = createPool(args.home, { name: requiredString(args.name, 'name', 'POOL_NAME'), policy, now: Date.now() })
    warnIfOpen(policy, io)
    // `--flag=value`: a value that starts with '-' (a root key can) still reads as the flag's value
    const joinCommand = `mesh pool-join --pool-id ${record.poolId} --pool-root-pubkey=${rootPublicKey} --name ${JSON.stringify(record.name)} --token=${joinToken}`
    io.out(args.json
      ? JSON.stringify({ poolId: record.poolId, name: record.name, rootPublicKey, joinToken, policy, joinCommand })
      : [
          `Created pool "${record.name}"; this device is its admin.`,
          `Pool ID:              ${record.poolId}`,
          `Pool Root Public Key: ${rootPublicKey}`,
          `Join token:           ${joinToken}`,
          `Policy:               ${policy}`,
          '',
          'On each device that should join, run:',
          `  ${joinCommand}`
        ].join('\n'))
  })
})

export const poolJoinCommand: MeshCommand = (io) => ({
  command: 'pool-join',
  describe: "record a pool to join; this device's agent then asks the admin for a certificate",
  builder: (y: Argv<GlobalArgs>) => y
    .option('pool-id', { type: 'string', describe: 'Pool ID from the admin (or a prefix of at least 16 hex digits)' })
    .option('pool-root-pubkey', { type: 'string', describe: 'Pool Root Public Key from the admin (64 hex digits)' })
    .option('name', { type: 'string', describe: 'a local name for the pool (env POOL_NAME)', default: fromEnv('POOL_NAME') })
    .option('token', { type: 'string', describe: 'the join token from the admin (needed under the token policy), or a pre-authorised key from `mesh pool-key create` (signed at once under any policy)' })
    .option('start', { type: 'boolean', default: false, describe: 'then start the agent, as `mesh start` does (settings from agent.json and the environment), unless it runs already' })
    .option('wait', { type: 'number', describe: 'then wait up to N seconds for the certificate (the agent must be running: mesh start, or --start)' })
    .option('bootstrap', { type: 'string', array: true, describe: 'the admin across a NAT: PEER_ID@HOST:PORT or a multiaddr (its relayed one, …/p2p/RELAY/p2p-circuit/p2p/ADMIN, as pool-status and device1.sh print it); kept in agent.json, the agent asks it for the certificate over libp2p when no beacon reaches the admin' }),
  handler: handler<{ poolId?: unknown, poolRootPubkey?: unknown, name?: unknown, token?: unknown, start: unknown, wait?: unknown, bootstrap?: unknown }>(async (args) => {
    const bootstrap = optionalStrings(args.bootstrap, 'bootstrap')
    // checked before anything is written: a bad address leaves MESH_HOME as it was
    for (const b of bootstrap) parseBootstrapEntry(b, DEFAULT_BEACON_PORT)
    if (bootstrap.length > 0) readAgentFile(args.home) // a corrupt agent.json is named now, before the pool is recorded
    const wait = optionalSeconds(args.wait, 'wait')
    const start = args.start === true
    // what the agent part needs is checked before anything is written: a running agent for --wait, one that can start for --start
    const running = wait !== undefined || start ? await runningAgent(args.home) : undefined
    if (wait !== undefined && !start && running === undefined) throw new AgentNotRunningError(args.home)
    const plan = start && running === undefined ? await checkStart(args.home, { bootstrap }) : undefined
    const record = joinPool(args.home, {
      poolId: requiredString(args.poolId, 'pool-id'),
      rootPublicKey: requiredString(args.poolRootPubkey, 'pool-root-pubkey'),
      name: requiredString(args.name, 'name', 'POOL_NAME'),
      token: optionalString(args.token, 'token'),
      now: Date.now()
    })
    const bootstrapAdded = bootstrap.length > 0 && addBootstrapToAgentFile(args.home, bootstrap)
    if (bootstrapAdded && running !== undefined && !args.json) io.out('Bootstrap peer recorded in agent.json; the running agent uses it after a restart (mesh stop; mesh start).')
    const next = wait !== undefined
      ? `waiting up to ${wait} s for a certificate from the admin…`
      : start ? 'the agent asks the admin for a certificate (mesh pool-status shows when it arrives).' : 'waiting for a certificate from the admin (start the agent with `mesh start`).'
    if (!args.json) io.out(`Recorded pool ${record.poolId} "${record.name}"; ${next}`)
    // the agent started here, or null when one ran already
    const agent = plan === undefined ? null : startedJson(await startAgent(plan, io, args.json), args.home)
    const recorded = { poolId: record.poolId, name: record.name, state: record.state, token: record.joinToken !== null, ...(start ? { agent } : {}) }
    if (wait === undefined) {
      if (args.json) io.out(JSON.stringify(recorded))
      return
    }
    await waitForCertificate(args.home, record.poolId, wait)
    const joined = summarizePool(readPoolRecord(args.home, record.poolId), Date.now())
    io.out(args.json
      ? JSON.stringify({ ...recorded, state: joined.state, certificate: joined.certificate })
      : `Certificate received: this device is a member of pool ${joined.shortId} (valid until ${joined.certificate?.notAfter ?? '?'}).`)
  })
})

/** A pool as stored, with what the running agent says of it: its ring and peer counts. */
export type LivePool = PoolSummary & {
  /** 'agent': ring and peers are live from the running agent; 'stored': the agent is not running */
  source: 'agent' | 'stored'
  /** null when the agent is not running or (ring) the pool has no certificate yet */
  ring: AgentStatus['pools'][number]['ring']
  peers: AgentStatus['pools'][number]['peers'] | null
}

export function withLive (summary: PoolSummary, live: AgentStatus | undefined): LivePool {
  const seen = live?.pools.find(p => p.poolId === summary.poolId)
  return { ...summary, source: live === undefined ? 'stored' : 'agent', ring: seen?.ring ?? null, peers: seen?.peers ?? null }
}

export const poolListCommand: MeshCommand = (io) => ({
  command: 'pool-list',
  describe: 'the pools of this device: role, state, certificate expiry; ring epoch, members and peers online from the running agent',
  builder: (y: Argv<GlobalArgs>) => y,
  handler: handler<{}>(async (args) => {
    loadDevice(args.home)
    const now = Date.now()
    const live = await runningAgent(args.home)
    const pools = listPoolRecords(args.home).map(r => withLive(summarizePool(r, now), live))
    if (args.json) { io.out(JSON.stringify(pools)); return }
    io.out(live !== undefined ? livePoolListText(pools) : pools.length === 0 ? poolListText(pools) : `${poolListText(pools)}\n\n${STORED_ONLY_NOTE}`)
  })
})

export const poolStatusCommand: MeshCommand = (io) => ({
  command: 'pool-status',
  describe: 'details of one pool or all: certificate, policy, members, pending requests, revocations; peers and beacon counters from the running agent',
  builder: (y: Argv<GlobalArgs>) => y
    .option('pool-id', { type: 'string', describe: 'only this pool (Pool ID or a prefix of at least 16 hex digits)' }),
  handler: handler<{ poolId?: unknown }>(async (args) => {
    const device = loadDevice(args.home)
    const typed = optionalString(args.poolId, 'pool-id')
    const records = typed === undefined ? listPoolRecords(args.home) : [readPoolRecord(args.home, resolvePoolId(args.home, typed))]
    const now = Date.now()
    const live = await runningAgent(args.home)
    const pools = records.map(r => ({ ...withLive(summarizePool(r, now), live), ...(r.role === 'admin' ? { joinToken: r.joinToken } : {}) }))
    if (args.json) {
      io.out(JSON.stringify({ nodeId: device.nodeId, name: device.name, networkId: device.networkId, source: live === undefined ? 'stored' : 'agent', pools, agent: liveAgentJson(live) }))
      return
    }
    const head = `This device: ${device.nodeId} "${device.name}" on network ${device.networkId}\n${live === undefined ? STORED_ONLY_NOTE : `${agentStatusText(live)}\n${natText(live, now)}`}`
    const body = pools.length === 0
      ? 'No pools yet.'
      : pools.map(p => poolStatusText(p, p.joinToken) + (live === undefined ? '' : peersLine(p.peers) + ringLine(p.ring))).join('\n\n')
    io.out(`${head}\n\n${body}`)
  })
})
