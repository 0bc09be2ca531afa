/**
 * The thin I/O half of `mesh service`: read and write the files unit.ts renders, and run
 * systemctl, systemd-sysusers, journalctl and ss through an injected Runner (unit tests pass
 * their own; the CLI passes execRunner). Every decision is made in unit.ts.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type { AgentStatus } from '../../agent/agent.js'
import { callAgent } from '../../agent/api/client.js'
import { writeFileAtomic } from '../../atomic-file.js'
import { deviceKeyFile } from '../../pool/paths.js'
import { ServiceCommandError } from '../errors.js'
import {
  decideInstall, DEFAULT_RUN_AS, defaultDirs, envFileName, MARKER, parseEnvFile, serviceFiles, SYSUSERS_FILE, unitName,
  type FileState, type InstallDecision, type ServiceDirs, type ServiceSpec
} from './unit.js'

export interface CommandResult { readonly code: number, readonly stdout: string, readonly stderr: string }
/** Runs one program (no shell) and resolves with its exit code and output; never rejects. */
export type Runner = (file: string, args: readonly string[], timeoutMs?: number) => Promise<CommandResult>

/** systemctl and friends answer in milliseconds; a stuck one must not hang `mesh service` */
const COMMAND_TIMEOUT_MS = 30_000

export const execRunner: Runner = async (file, args, timeoutMs = COMMAND_TIMEOUT_MS) => await new Promise((resolve) => {
  execFile(file, [...args], { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
    const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 127
    resolve({ code, stdout, stderr: err !== null && stderr === '' ? err.message : stderr })
  })
})

/** One service as install, status and uninstall see it: what it is and where its files go. */
export interface ServiceTarget {
  readonly spec: ServiceSpec
  readonly dirs: ServiceDirs
  /** '/' for this system; another directory is an OS image: files and `systemctl --root`, nothing runs */
  readonly root: string
}

/** Whether systemd is this system's init: it creates /run/systemd/system at boot (sd_booted(3)). */
export function systemdRunning (): boolean {
  return fs.existsSync('/run/systemd/system')
}

/** One clear line where mesh cannot install a service; undefined where it can. */
export function unsupportedReason (platform: NodeJS.Platform, root: string, booted: boolean): string | undefined {
  if (platform === 'darwin') return 'mesh service is not supported on macOS yet (launchd); run `mesh start` from a login item instead'
  if (platform !== 'linux') return `mesh service needs Linux with systemd; ${platform} is not supported; run \`mesh start\` instead`
  if (root === '/' && !booted) {
    let init = 'another init'
    try { init = fs.readFileSync('/proc/1/comm', 'utf8').trim() } catch { /* unknown */ }
    return `systemd is not running on this machine (PID 1 is ${init}); run \`mesh start\` instead, or give --root DIR to install into an OS image`
  }
  return undefined
}

function systemctlBase (t: ServiceTarget): string[] {
  return [...(t.spec.scope === 'user' ? ['--user'] : []), ...(t.root === '/' ? [] : [`--root=${t.root}`])]
}

async function must (run: Runner, file: string, args: readonly string[]): Promise<CommandResult> {
  const r = await run(file, args)
  if (r.code !== 0) {
    const why = (r.stderr.trim().split('\n')[0] ?? '') || `exit code ${r.code}`
    throw new ServiceCommandError(`${path.basename(file)} ${args.join(' ')} failed: ${why}`)
  }
  return r
}

export async function systemctl (run: Runner, t: ServiceTarget, ...args: string[]): Promise<CommandResult> {
  return await must(run, 'systemctl', [...systemctlBase(t), ...args])
}

function readState (file: string): FileState | null {
  try {
    return { content: fs.readFileSync(file, 'utf8'), mode: fs.statSync(file).mode }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new ServiceCommandError(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}); run as root (sudo) for a system service`)
  }
}

/** The file was written by install (its first line is the marker), so uninstall may remove it. */
function ours (file: string): boolean {
  return readState(file)?.content.startsWith(MARKER) === true
}

export interface InstallReport {
  readonly unit: string
  readonly decision: InstallDecision['kind']
  readonly written: string[]
  /** what was done to the running service: started, restarted, or nothing */
  readonly action: 'started' | 'restarted' | 'none'
  /** why it was not started, when it was not */
  readonly notStarted: string | null
}

/** The device identity the agent needs before it can run (mesh init). */
export function hasIdentity (home: string): boolean {
  return fs.existsSync(deviceKeyFile(home))
}

/**
 * Write what differs, create the system user, enable, and start (first install) or restart (changed
 * settings). Same settings: nothing is written or run. A file in the way that install did not write
 * is refused rather than overwritten.
 */
export async function installService (t: ServiceTarget, run: Runner, opts: { start: boolean }): Promise<InstallReport> {
  const files = serviceFiles(t.spec, t.dirs, t.root)
  const decision = decideInstall(files, files.map((f) => readState(f.path)))
  const unit = unitName(t.spec)
  if (decision.kind === 'unchanged') return { unit, decision: decision.kind, written: [], action: 'none', notStarted: null }
  for (const f of decision.write) {
    if (readState(f.path) !== null && !ours(f.path)) throw new ServiceCommandError(`${f.path} exists and was not written by mesh; move it away first`)
  }
  for (const f of decision.write) {
    fs.mkdirSync(path.dirname(f.path), { recursive: true, mode: 0o755 })
    writeFileAtomic(f.path, f.content, f.mode)
  }
  const live = t.root === '/'
  const sysusers = path.join(t.dirs.sysusersDir, SYSUSERS_FILE)
  if (decision.write.some((f) => f.path === sysusers)) await must(run, 'systemd-sysusers', [...(live ? [] : [`--root=${t.root}`]), sysusers])
  // MESH_HOME must exist and belong to the service user before `mesh init` can run as that user
  // (in an image, systemd creates the state directory at first start)
  if (live && t.spec.scope === 'system' && !fs.existsSync(t.spec.home)) {
    await must(run, 'install', ['-d', '-m', '0700', '-o', t.spec.runAs, '-g', t.spec.runAs, t.spec.home])
  }
  if (live) await systemctl(run, t, 'daemon-reload')
  await systemctl(run, t, 'enable', unit)
  const written = decision.write.map((f) => f.path)
  let notStarted: string | null = null
  if (!live) notStarted = `installed into the image at ${t.root}; it starts when that system boots`
  else if (!opts.start) notStarted = '--no-start'
  else if (!hasIdentity(t.spec.home)) notStarted = `${t.spec.home} has no device identity yet; run ${initHint(t.spec)}, then ${startHint(t.spec)}`
  if (notStarted !== null) return { unit, decision: decision.kind, written, action: 'none', notStarted }
  await systemctl(run, t, decision.kind === 'create' ? 'start' : 'restart', unit)
  return { unit, decision: decision.kind, written, action: decision.kind === 'create' ? 'started' : 'restarted', notStarted: null }
}

export function initHint (spec: ServiceSpec): string {
  const as = spec.scope === 'system' ? `sudo -u ${spec.runAs} ` : ''
  return `\`${as}mesh init --home ${spec.home} --network-id ID --name NAME\``
}

export function startHint (spec: ServiceSpec): string {
  return `\`systemctl ${spec.scope === 'user' ? '--user ' : ''}start ${unitName(spec)}\``
}

export interface UninstallReport { readonly unit: string, readonly removed: string[] }

/** Stop, disable and remove the files install wrote; MESH_HOME and the system user stay. */
export async function uninstallService (t: ServiceTarget, run: Runner): Promise<UninstallReport> {
  const unit = unitName(t.spec)
  const files = serviceFiles(t.spec, t.dirs, t.root).map((f) => f.path)
  const [unitFile, envFile] = files
  if (unitFile === undefined || !ours(unitFile)) return { unit, removed: [] }
  if (t.root === '/') {
    // stopping a unit that is not running succeeds; one systemd never loaded is not an error either
    const stop = await run('systemctl', [...systemctlBase(t), 'stop', unit])
    if (stop.code !== 0 && !/not loaded|not found/i.test(stop.stderr)) throw new ServiceCommandError(`systemctl stop ${unit} failed: ${stop.stderr.trim().split('\n')[0] ?? ''}`)
  }
  await systemctl(run, t, 'disable', unit)
  const removed: string[] = []
  const remove = (f: string): void => { if (ours(f)) { fs.rmSync(f); removed.push(f) } }
  remove(unitFile)
  if (envFile !== undefined) remove(envFile)
  // the sysusers line is shared by every instance: it goes with the last one
  const sysusers = files[2]
  if (sysusers !== undefined && otherUnits(t).length === 0) remove(sysusers)
  if (t.root === '/') await systemctl(run, t, 'daemon-reload')
  return { unit, removed }
}

/** Units of other instances that install wrote in the same directory. */
function otherUnits (t: ServiceTarget): string[] {
  let names: string[] = []
  try { names = fs.readdirSync(t.dirs.unitDir) } catch { return [] }
  return names.filter((n) => /^mesh-agent(@.+)?\.service$/.test(n) && n !== unitName(t.spec) && ours(path.join(t.dirs.unitDir, n)))
}

export interface ServiceState {
  readonly unit: string
  readonly scope: ServiceSpec['scope']
  /** the unit file install writes exists */
  readonly installed: boolean
  readonly enabled: boolean
  /** systemd's ActiveState (active, inactive, failed, activating…); null when systemd is not running */
  readonly active: string | null
  readonly mainPid: number | null
  readonly unitFile: string
}

export async function serviceState (t: ServiceTarget, run: Runner, booted: boolean): Promise<ServiceState> {
  const unit = unitName(t.spec)
  const scope = t.spec.scope
  const unitFile = path.join(t.dirs.unitDir, unit)
  const installed = ours(unitFile)
  if (!installed) return { unit, scope, installed, enabled: false, active: null, mainPid: null, unitFile }
  // without a running systemd, --root=/ still reads the enablement symlinks offline
  const base = booted && t.root === '/' ? systemctlBase(t) : [...(t.spec.scope === 'user' ? ['--user'] : []), `--root=${t.root}`]
  const enabled = (await run('systemctl', [...base, 'is-enabled', unit])).stdout.trim() === 'enabled'
  if (!booted || t.root !== '/') return { unit, scope, installed, enabled, active: null, mainPid: null, unitFile }
  const props = parseShow((await run('systemctl', [...base, 'show', unit, '--property=ActiveState,MainPID'])).stdout)
  const pid = Number(props.MainPID ?? '0')
  return { unit, scope, installed, enabled, active: props.ActiveState ?? null, mainPid: pid > 0 ? pid : null, unitFile }
}

/** `systemctl show`'s KEY=VALUE lines. */
export function parseShow (text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
}

export interface PostCheck { readonly id: string, readonly ok: boolean, readonly detail: string }

/** how long the agent may take after `systemctl start` to answer (it hashes its model first) */
const POST_CHECK_DEADLINE_MS = 30_000
const POLL_MS = 250

/**
 * After a start: the unit is active, its MainPID is the agent answering on MESH_HOME's socket,
 * the API port (if any) is listening, and the journal has that process's start line.
 */
export async function postChecks (t: ServiceTarget, run: Runner, apiPort: number | undefined, deadlineMs = POST_CHECK_DEADLINE_MS): Promise<PostCheck[]> {
  const unit = unitName(t.spec)
  const until = Date.now() + deadlineMs
  let state: ServiceState | undefined
  let agent: AgentStatus | undefined
  for (;;) {
    state = await serviceState(t, run, true)
    agent = await callAgent<AgentStatus>(t.spec.home, 'GET', '/v1/status', 2000).catch(() => undefined)
    if ((state.active === 'active' && agent !== undefined && agent.pid === state.mainPid) || Date.now() > until) break
    if (state.active === 'failed') break
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
  const checks: PostCheck[] = [
    { id: 'active', ok: state.active === 'active', detail: `${unit} is ${state.active ?? 'unknown'}` },
    {
      id: 'main-pid',
      ok: agent !== undefined && agent.pid === state.mainPid,
      detail: agent === undefined
        ? `no agent answers on ${t.spec.home}/run/agent.sock`
        : `MainPID ${state.mainPid ?? 'none'}, agent pid ${agent.pid}`
    }
  ]
  if (apiPort !== undefined) {
    // a filter on the exact port, not a grep (which would also match 18080)
    const ss = await run('ss', ['-Hltn', `sport = :${apiPort}`])
    checks.push({ id: 'api-port', ok: ss.code === 0 && ss.stdout.trim() !== '', detail: `TCP port ${apiPort} ${ss.stdout.trim() !== '' ? 'is listening' : 'is not listening'}` })
  }
  if (state.mainPid !== null) {
    const j = await run('journalctl', [...(t.spec.scope === 'user' ? ['--user'] : []), '-u', unit, `_PID=${state.mainPid}`, '-o', 'cat', '--no-pager'])
    const line = `mesh agent running (pid ${state.mainPid})`
    checks.push({ id: 'journal', ok: j.stdout.includes(line), detail: j.stdout.includes(line) ? `the journal has "${line}"` : `the journal lacks "${line}" (journalctl -u ${unit})` })
  }
  return checks
}

/**
 * The services install wrote whose env file names `home` as MESH_HOME: system units and this
 * user's units, default and instances. Unreadable env files (a system one, read by a user) are
 * passed over: doctor then says no service was found for this home.
 */
export function servicesFor (home: string, userHome: string, root = '/'): ServiceTarget[] {
  const found: ServiceTarget[] = []
  for (const scope of ['system', 'user'] as const) {
    const dirs = defaultDirs(scope, userHome, root)
    let names: string[] = []
    try { names = fs.readdirSync(dirs.unitDir) } catch { continue }
    for (const name of names) {
      const m = /^mesh-agent(?:@(.+))?\.service$/.exec(name)
      if (m === null || !ours(path.join(dirs.unitDir, name))) continue
      const instance = m[1]
      let env: Record<string, string> = {}
      try { env = parseEnvFile(fs.readFileSync(path.join(dirs.envDir, envFileName({ instance })), 'utf8')) } catch { continue }
      if (env.MESH_HOME === undefined || path.resolve(env.MESH_HOME) !== path.resolve(home)) continue
      found.push({ spec: { scope, instance, home, node: '', meshScript: '', runAs: DEFAULT_RUN_AS, env: {} }, dirs, root })
    }
  }
  return found
}
