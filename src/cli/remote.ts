/**
 * `mesh remote provision|provision-all|add|list|prepare`: add boxes to a pool over SSH from the
 * admin's machine. The sequence lives in src/ops/remote; this module parses flags and prints.
 */
import type { Argv, CommandModule } from 'yargs'
import { MeshError, UsageError } from '../errors.js'
import { addHost, readHosts, type HostEntry } from '../ops/remote/hosts.js'
import { parsePrepareProbe, prepareProbe, prepareScript, dropInPath } from '../ops/remote/prepare.js'
import { provision, type ProvisionResult, type StepEvent } from '../ops/remote/provision.js'
import { RemoteStepError } from '../ops/remote/errors.js'
import { parseTarget, runSsh, runSshInteractive, type SshTarget } from '../ops/remote/ssh.js'
import { explainSshFailure } from '../ops/remote/ssh-errors.js'
import { SSH_COMMAND_TIMEOUT_MS } from '../ops/remote/steps.js'
import { commandGroup, handler, optionalString } from './args.js'
import type { MeshCommand } from './commands.js'
import { packageRoot } from './version.js'
import type { CliIO, GlobalArgs } from '../process/io.js'

/** The run failed: its one line was printed already (per host for provision-all). */
class ProvisionFailedError extends MeshError {}

const targetOptions = <T>(y: Argv<T>): Argv<T> => y
  .positional('destination', { type: 'string', describe: 'user@host (or an alias from ~/.ssh/config)' })
  .option('port', { type: 'number', describe: 'SSH port', defaultDescription: '22 or ~/.ssh/config' })
  .option('identity', { type: 'string', describe: 'private key file for ssh (ssh -i)', defaultDescription: "ssh's own" })

type TargetArgs = { destination?: unknown, port?: unknown, identity?: unknown }

function targetOf (a: TargetArgs): SshTarget {
  if (a.destination === undefined || a.destination === '') throw new UsageError('missing user@host; see --help')
  if (a.port !== undefined && typeof a.port !== 'number') throw new UsageError('--port must be a number')
  return parseTarget(String(a.destination), a.port as number | undefined, optionalString(a.identity, 'identity'))
}

/** The progress line of one step, on stderr (stdout keeps the result, for scripts). */
function progressLine (e: StepEvent): string {
  if (e.kind === 'start') return `${e.state} …`
  const r = e.record
  return `${r.state} ${r.status} (${(r.ms / 1000).toFixed(1)} s): ${r.detail}`
}

function resultLine (r: ProvisionResult): string {
  if (r.state === 'SUCCESS') return `SUCCESS: ${r.destination} is ${r.nodeId ?? '?'} in the pool's ring${r.changed ? '' : '; no changes'} (${(r.ms / 1000).toFixed(1)} s)`
  if (r.state === 'MANUAL_NEEDED') return `MANUAL_NEEDED: ${r.destination} runs Windows: run ${r.script ?? 'the join script'} there in PowerShell`
  return `EXIT_ERROR: ${r.destination}: ${r.error ?? 'failed'}`
}

function resultJson (r: ProvisionResult): Record<string, unknown> {
  return { destination: r.destination, state: r.state, changed: r.changed, nodeId: r.nodeId ?? null, os: r.os ?? null, ms: r.ms, error: r.error ?? null, script: r.script ?? null, steps: r.steps }
}

async function provisionOne (home: string, t: SshTarget, o: { poolId?: string | undefined, name?: string | undefined, service: boolean }, report: (e: StepEvent) => void): Promise<ProvisionResult> {
  return await provision({ home, target: t, poolId: o.poolId, name: o.name, service: o.service, packageRoot: packageRoot() }, report)
}

const provisionCommand = (io: CliIO): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'provision [destination]',
  describe: 'add a Linux or macOS box to a pool over SSH: install mesh if needed, join with a fresh single-use key, start the agent, check the ring',
  builder: (y: Argv<GlobalArgs>) => targetOptions(y)
    .option('pool', { type: 'string', describe: 'the pool (Pool ID or a prefix of 16+ hex digits)', defaultDescription: 'the only pool this device administers' })
    .option('name', { type: 'string', describe: 'device name on the box', defaultDescription: 'its hostname' })
    .option('service', { type: 'boolean', default: false, describe: 'run the agent as a user service (mesh service install --user) instead of mesh start' }),
  handler: handler<TargetArgs & { pool?: unknown, name?: unknown, service: unknown }>(async (a) => {
    const t = targetOf(a)
    const r = await provisionOne(a.home, t, { poolId: optionalString(a.pool, 'pool'), name: optionalString(a.name, 'name'), service: a.service === true },
      a.json ? () => {} : (e) => { io.err(progressLine(e)) })
    if (a.json) io.out(JSON.stringify(resultJson(r)))
    else if (r.state !== 'EXIT_ERROR') io.out(resultLine(r))
    if (r.state === 'EXIT_ERROR') throw new ProvisionFailedError(r.error ?? 'provisioning failed')
  })
})

const addCommand = (io: CliIO): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'add [destination]',
  describe: 'list a box in MESH_HOME/hosts.json for `mesh remote provision-all`',
  builder: (y: Argv<GlobalArgs>) => targetOptions(y)
    .option('pool', { type: 'string', describe: 'the pool to join (Pool ID, 16-64 hex digits)' })
    .option('name', { type: 'string', describe: 'device name on the box' })
    .option('service', { type: 'boolean', describe: 'run the agent as a user service there' }),
  handler: handler<TargetArgs & { pool?: unknown, name?: unknown, service?: unknown }>((a) => {
    const t = targetOf(a)
    const entry: HostEntry = {
      destination: t.destination,
      ...(t.port !== undefined ? { port: t.port } : {}),
      ...(t.identity !== undefined ? { identity: t.identity } : {}),
      ...(a.name !== undefined ? { name: String(optionalString(a.name, 'name')) } : {}),
      ...(a.pool !== undefined ? { pool: String(optionalString(a.pool, 'pool')).toLowerCase() } : {}),
      ...(a.service === true ? { service: true } : {})
    }
    if (entry.pool !== undefined && !/^[0-9a-f]{16,64}$/.test(entry.pool)) throw new UsageError('--pool must be a Pool ID or a prefix of 16-64 hex digits')
    const { added, hosts } = addHost(a.home, entry)
    io.out(a.json ? JSON.stringify({ added, hosts: hosts.hosts }) : `${added ? 'added' : 'updated'} ${t.destination}; ${hosts.hosts.length} host(s) in hosts.json`)
  })
})

const listCommand = (io: CliIO): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'list',
  describe: 'the boxes in MESH_HOME/hosts.json',
  builder: (y: Argv<GlobalArgs>) => y,
  handler: (a) => {
    const { hosts } = readHosts(a.home)
    if (a.json) { io.out(JSON.stringify(hosts)); return }
    if (hosts.length === 0) { io.out('no hosts (mesh remote add user@host lists one)'); return }
    for (const h of hosts) io.out([h.destination, h.port !== undefined ? `port ${h.port}` : '', h.name ?? '', h.pool !== undefined ? `pool ${h.pool.slice(0, 16)}` : '', h.service === true ? 'service' : ''].filter(x => x !== '').join('  '))
  }
})

const provisionAllCommand = (io: CliIO): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'provision-all',
  describe: 'provision every box in MESH_HOME/hosts.json, one after the other, past any that fails; ends with a table',
  builder: (y: Argv<GlobalArgs>) => y,
  handler: async (a) => {
    const { hosts } = readHosts(a.home)
    if (hosts.length === 0) throw new UsageError('MESH_HOME/hosts.json lists no hosts; add them with `mesh remote add user@host`')
    const results: ProvisionResult[] = []
    for (const h of hosts) {
      if (!a.json) io.err(`== ${h.destination}`)
      const t = parseTarget(h.destination, h.port, h.identity)
      const r = await provisionOne(a.home, t, { poolId: h.pool, name: h.name, service: h.service === true }, a.json ? () => {} : (e) => { io.err(progressLine(e)) })
      if (!a.json && r.error !== undefined) io.err(`mesh: ${r.error}`)
      results.push(r)
    }
    if (a.json) io.out(JSON.stringify({ hosts: results.map(resultJson) }))
    else {
      const rows = results.map(r => [r.destination, r.state, r.changed ? 'changed' : 'no changes', r.nodeId ?? '-', `${(r.ms / 1000).toFixed(1)} s`])
      const widths = [0, 1, 2, 3].map(i => Math.max(...[['HOST', 'STATE', 'CHANGES', 'NODE'][i] as string, ...rows.map(r => r[i] as string)].map(s => s.length)))
      const fmt = (r: string[]): string => r.map((c, i) => i < 4 ? c.padEnd(widths[i] as number) : c).join('  ')
      io.out([fmt(['HOST', 'STATE', 'CHANGES', 'NODE', 'TIME']), ...rows.map(fmt)].join('\n'))
    }
    const failed = results.filter(r => r.state === 'EXIT_ERROR').length
    if (failed > 0) throw new ProvisionFailedError(`${failed} of ${results.length} hosts failed (see above)`)
  }
})

const prepareCommand = (io: CliIO): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'prepare [destination]',
  describe: 'once, interactively: a sudoers drop-in on the box (0440, checked by visudo -cf) so `provision --service` needs no password',
  builder: (y: Argv<GlobalArgs>) => targetOptions(y),
  handler: handler<TargetArgs>(async (a) => {
    const t = targetOf(a)
    const probe = await runSsh(t, prepareProbe, { timeoutMs: SSH_COMMAND_TIMEOUT_MS })
    const failure = explainSshFailure(probe, t.destination, SSH_COMMAND_TIMEOUT_MS)
    if (failure !== undefined) throw new RemoteStepError('SSH_TESTING', failure.cause, failure.fix)
    const p = parsePrepareProbe(probe.stdout)
    if (!p.sudo) throw new UsageError(`${t.destination} has no sudo; as root there, allow \`loginctl enable-linger ${p.user}\` another way, or skip --service`)
    if (p.loginctl === undefined) throw new UsageError(`${t.destination} has no loginctl (no systemd): \`provision --service\` cannot run there; provision without --service`)
    if (!process.stdin.isTTY) throw new UsageError('mesh remote prepare asks for the sudo password on the box: run it in a terminal')
    io.err(`Installing ${dropInPath(p.user)} on ${t.destination} (sudo may ask for ${p.user}'s password)…`)
    const code = await runSshInteractive(t, prepareScript(p.user, p.loginctl), SSH_COMMAND_TIMEOUT_MS)
    if (code !== 0) throw new RemoteStepError('CONNECTING', `preparing ${t.destination} failed (exit ${String(code)}): sudo refused, visudo rejected the drop-in, or sudo -n still asks for a password`, 'read the lines above; the drop-in is installed only when visudo accepts it')
    io.out(a.json ? JSON.stringify({ destination: t.destination, dropIn: dropInPath(p.user), sudoNonInteractive: true }) : `prepared ${t.destination}: ${dropInPath(p.user)} installed, sudo -n works for loginctl enable-linger ${p.user}`)
  })
})

export const remoteCommand: MeshCommand = (io) => commandGroup('remote', 'add boxes to a pool over SSH (provision, provision-all, add, list, prepare)', [provisionCommand(io), provisionAllCommand(io), addCommand(io), listCommand(io), prepareCommand(io)])
