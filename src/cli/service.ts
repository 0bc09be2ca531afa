import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Argv, CommandModule } from 'yargs'
import { resolveAgentConfig, absolutePaths } from '../agent/config.js'
import { checkApiExposure } from '../agent/api/openai/keys.js'
import { formatApiAddress, isLoopbackHost } from '../agent/api/openai/address.js'
import { UsageError } from '../errors.js'
import { ServiceCheckError, ServiceUnsupportedError } from '../ops/errors.js'
import {
  execRunner, installService, postChecks, serviceState, systemdRunning, uninstallService, unsupportedReason,
  type ServiceTarget
} from '../ops/service/systemd.js'
import {
  DEFAULT_RUN_AS, defaultDirs, defaultSystemHome, envFileName, INSTANCE_PATTERN, parseEnvFile,
  type AgentEnv, type ServiceScope
} from '../ops/service/unit.js'
import { commandGroup } from './args.js'
import type { MeshCommand } from './commands.js'
import type { CliIO, GlobalArgs } from '../process/io.js'

interface TargetArgs extends GlobalArgs { user: boolean, name?: unknown, root?: unknown, 'run-as'?: unknown }
interface InstallArgs extends TargetArgs {
  model?: unknown, tokenizer?: unknown, api?: unknown, relay?: unknown, 'control-plane'?: unknown, threads?: unknown, start: boolean
}

const targetOptions = <T>(y: Argv<T>): Argv<T> => y
  .option('user', { type: 'boolean', default: false, describe: 'a user unit (systemctl --user, no root needed) running as you, with MESH_HOME as given' })
  .option('name', { type: 'string', describe: 'a second agent with its own MESH_HOME: unit mesh-agent@NAME', defaultDescription: 'mesh-agent' })
  .option('root', { type: 'string', describe: 'install into the OS image at DIR (systemctl --root; nothing is started)', defaultDescription: '/ (this system)' })

/** `--home` unless neither it nor MESH_HOME was given: then a system service keeps its state in /var/lib. */
function serviceHome (a: TargetArgs, scope: ServiceScope, instance: string | undefined): string {
  const implicit = (process.env.MESH_HOME ?? '') === '' && a.home === path.join(os.homedir(), '.meshnet')
  return scope === 'system' && implicit ? defaultSystemHome(instance) : path.resolve(a.home)
}

function oneString (v: unknown, flag: string): string | undefined {
  if (v === undefined) return undefined
  if (Array.isArray(v)) throw new UsageError(`--${flag} is given more than once; give it once`)
  if (v === '') throw new UsageError(`--${flag} needs a value; see mesh service install --help`)
  return String(v)
}

/** Which service the flags name, and where its files go; one line where this system cannot have one. */
function target (a: TargetArgs, home?: string): ServiceTarget {
  const scope: ServiceScope = a.user ? 'user' : 'system'
  const instance = oneString(a.name, 'name')
  if (instance !== undefined && !INSTANCE_PATTERN.test(instance)) throw new UsageError(`--name ${JSON.stringify(instance)} must be letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit`)
  const rootFlag = oneString(a.root, 'root')
  const root = rootFlag === undefined ? '/' : path.resolve(rootFlag)
  if (root !== '/' && scope === 'user') throw new UsageError('--root installs a system service into an image; drop --user')
  if (root !== '/' && !fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--root ${root} is not a directory`)
  const why = unsupportedReason(process.platform, root, systemdRunning())
  if (why !== undefined) throw new ServiceUnsupportedError(why)
  const runAs = oneString(a['run-as'], 'run-as') ?? DEFAULT_RUN_AS
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(runAs)) throw new UsageError(`--run-as ${JSON.stringify(runAs)} is not a user name (lowercase letters, digits, '_', '-')`)
  const dirs = defaultDirs(scope, os.homedir(), root)
  const spec = {
    scope, instance, runAs,
    home: home ?? serviceHome(a, scope, instance),
    node: process.execPath,
    meshScript: fs.realpathSync(process.argv[1] ?? 'mesh'),
    env: {}
  }
  return { spec, dirs, root }
}

/** The agent settings the env file carries, checked as `mesh start` would check them. */
function agentEnv (a: InstallArgs, home: string): AgentEnv {
  const relay = a.relay === undefined ? undefined : [a.relay].flat().map(String)
  const threads = a.threads === undefined ? undefined : Number(a.threads)
  const files = absolutePaths({ model: oneString(a.model, 'model'), tokenizer: oneString(a.tokenizer, 'tokenizer') }, process.cwd())
  for (const f of [files.model, files.tokenizer]) if (f !== undefined && !fs.existsSync(f)) throw new UsageError(`model file ${f} does not exist; give an existing --model/--tokenizer`)
  const env: AgentEnv = { ...files, api: oneString(a.api, 'api'), relays: relay, controlPlane: oneString(a['control-plane'], 'control-plane'), threads }
  // the same checks the agent makes at start: a bad value is refused here, before anything is written
  const config = resolveAgentConfig(home, { model: env.model, tokenizer: env.tokenizer, api: env.api, relays: relay, controlPlane: env.controlPlane, threads })
  if (config.api !== undefined && fs.existsSync(home)) checkApiExposure(home, formatApiAddress(config.api.address), isLoopbackHost(config.api.address.host))
  return env
}

const installCommand = (io: CliIO): CommandModule<GlobalArgs, InstallArgs> => ({
  command: 'install',
  describe: 'run the agent as a systemd service: write the unit and /etc/default/mesh-agent, enable and start it, then check it answers',
  builder: (y: Argv<GlobalArgs>) => targetOptions(y)
    .option('run-as', { type: 'string', describe: 'system user the agent runs as (made with systemd-sysusers if missing)', defaultDescription: DEFAULT_RUN_AS })
    .option('model', { type: 'string', describe: 'model file the agent serves (MESH_MODEL)', defaultDescription: 'bundled stories260K' })
    .option('tokenizer', { type: 'string', describe: 'llama2.c tokenizer for --model (MESH_TOKENIZER)' })
    .option('api', { type: 'string', describe: 'serve the OpenAI-compatible API on [HOST:]PORT (MESH_API)', defaultDescription: 'off' })
    .option('relay', { type: 'string', array: true, describe: 'mesh-relay multiaddr, repeatable (MESH_RELAYS)' })
    .option('control-plane', { type: 'string', describe: 'mesh-control-plane URL (MESH_CONTROL_PLANE)' })
    .option('threads', { type: 'number', describe: 'kernel threads for this member\'s share (MESH_THREADS)', defaultDescription: 'all cores' })
    .option('start', { type: 'boolean', default: true, describe: 'start (or restart) it now; --no-start only writes and enables' }) as unknown as Argv<InstallArgs>,
  handler: async (a) => {
    const t0 = target(a)
    const t: ServiceTarget = { ...t0, spec: { ...t0.spec, env: agentEnv(a, t0.spec.home) } }
    const report = await installService(t, execRunner, { start: a.start })
    const checks = report.action === 'none' ? [] : await postChecks(t, execRunner, t.spec.env.api === undefined ? undefined : resolveAgentConfig(t.spec.home, { api: t.spec.env.api }).api?.address.port)
    if (a.json) io.out(JSON.stringify({ ...report, home: t.spec.home, checks }))
    else {
      const said = { create: `installed ${report.unit}`, update: `settings changed: rewrote ${report.written.map((f) => path.basename(f)).join(', ')}`, unchanged: `${report.unit} is installed with these settings; nothing changed` }[report.decision]
      io.out(`${said}${report.action === 'none' ? '' : ` and ${report.action} it`} (MESH_HOME ${t.spec.home})`)
      for (const c of checks) io.out(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.id}: ${c.detail}`)
      if (report.notStarted !== null) io.err(`not started: ${report.notStarted}`)
    }
    const failed = checks.find((c) => !c.ok)
    if (failed !== undefined) throw new ServiceCheckError(`${report.unit} was ${report.action} but ${failed.id} failed: ${failed.detail}; see journalctl ${t.spec.scope === 'user' ? '--user ' : ''}-u ${report.unit}`)
  }
})

const uninstallCommand = (io: CliIO): CommandModule<GlobalArgs, TargetArgs> => ({
  command: 'uninstall',
  describe: 'stop and disable the service and remove the files install wrote (never MESH_HOME)',
  builder: (y: Argv<GlobalArgs>) => targetOptions(y) as unknown as Argv<TargetArgs>,
  handler: async (a) => {
    const r = await uninstallService(target(a), execRunner)
    if (a.json) io.out(JSON.stringify(r))
    else io.out(r.removed.length === 0 ? `${r.unit} is not installed; nothing to remove` : `removed ${r.unit}: ${r.removed.join(', ')}`)
  }
})

/** MESH_HOME of an installed service, as its env file says (status reads it to reach the agent). */
function installedHome (t: ServiceTarget): string | undefined {
  try {
    return parseEnvFile(fs.readFileSync(path.join(t.dirs.envDir, envFileName(t.spec)), 'utf8')).MESH_HOME
  } catch { return undefined }
}

const statusCommand = (io: CliIO): CommandModule<GlobalArgs, TargetArgs> => ({
  command: 'status',
  describe: 'whether the service is installed, enabled and active, and whether its agent answers',
  builder: (y: Argv<GlobalArgs>) => targetOptions(y) as unknown as Argv<TargetArgs>,
  handler: async (a) => {
    const t0 = target(a)
    const home = installedHome(t0) ?? t0.spec.home
    const s = await serviceState({ ...t0, spec: { ...t0.spec, home } }, execRunner, t0.root === '/' && systemdRunning())
    if (a.json) { io.out(JSON.stringify({ ...s, home })); return }
    if (!s.installed) { io.out(`${s.unit} is not installed (mesh service install${a.user ? ' --user' : ''})`); return }
    io.out(`${s.unit}: installed (${s.unitFile}), ${s.enabled ? 'enabled' : 'not enabled'}, ${s.active ?? 'state unknown (systemd not running)'}` +
      `${s.mainPid === null ? '' : `, pid ${s.mainPid}`}; MESH_HOME ${home}`)
  }
})

/** `mesh service install|uninstall|status`: the agent as a systemd service. */
export const serviceCommand: MeshCommand = (io) => commandGroup('service', 'run the agent as a system service (systemd): install, uninstall, status', [installCommand(io), uninstallCommand(io), statusCommand(io)])
