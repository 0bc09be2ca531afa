/**
 * What `mesh service install` writes, as pure functions of its settings: the systemd unit, the
 * environment file it reads, the sysusers.d line for the dedicated user, and the decision whether
 * an install changes anything. No I/O here; systemd.ts writes and runs.
 */
import path from 'node:path'

export type ServiceScope = 'system' | 'user'

/** What the agent is told through the environment file (the `MESH_*` variables `mesh start` reads). */
export interface AgentEnv {
  /** llama2.c checkpoint or GGUF file (MESH_MODEL) */
  readonly model?: string | undefined
  readonly tokenizer?: string | undefined
  /** [HOST:]PORT of the OpenAI-compatible API (MESH_API) */
  readonly api?: string | undefined
  readonly relays?: readonly string[] | undefined
  readonly controlPlane?: string | undefined
  readonly threads?: number | undefined
}

export interface ServiceSpec {
  readonly scope: ServiceScope
  /** a second agent with its own MESH_HOME: unit mesh-agent@NAME; undefined: mesh-agent */
  readonly instance?: string | undefined
  /** MESH_HOME of the service's agent (absolute) */
  readonly home: string
  /** the node binary and the `mesh` script the unit runs (absolute) */
  readonly node: string
  readonly meshScript: string
  /** system scope: the dedicated user the agent runs as (created through sysusers.d) */
  readonly runAs: string
  readonly env: AgentEnv
}

/** Where the files go: a live system's directories, or the same under an image root. */
export interface ServiceDirs {
  /** /etc/systemd/system, or ~/.config/systemd/user for --user */
  readonly unitDir: string
  /** /etc/default, or ~/.config/mesh for --user */
  readonly envDir: string
  /** /etc/sysusers.d (system scope only) */
  readonly sysusersDir: string
}

/** The default system user and the state directory systemd creates for it (/var/lib/…). */
export const DEFAULT_RUN_AS = 'mesh'
export const STATE_DIRECTORY = 'mesh-agent'
export const SYSTEM_STATE_ROOT = '/var/lib'

/** First line of every file install writes: uninstall removes only files that carry it. */
export const MARKER = '# Written by `mesh service install`; `mesh service uninstall` removes it.'

/** A name systemd accepts as an instance and a file name accepts as a suffix. */
export const INSTANCE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/

export function unitName (spec: Pick<ServiceSpec, 'instance'>): string {
  return spec.instance === undefined ? 'mesh-agent.service' : `mesh-agent@${spec.instance}.service`
}

/**
 * The file the unit lives in: its own name, also for an instance (systemd takes mesh-agent@NAME.service
 * before a template), so each instance's file names its own MESH_HOME and uninstall touches no other.
 */
export const unitFileName = unitName

export function envFileName (spec: Pick<ServiceSpec, 'instance'>): string {
  return spec.instance === undefined ? 'mesh-agent' : `mesh-agent@${spec.instance}`
}

export const SYSUSERS_FILE = 'mesh-agent.conf'

export function defaultDirs (scope: ServiceScope, userHome: string, root = '/'): ServiceDirs {
  const r = (p: string): string => path.join(root, p)
  if (scope === 'user') {
    const config = path.join(userHome, '.config')
    return { unitDir: path.join(config, 'systemd', 'user'), envDir: path.join(config, 'mesh'), sysusersDir: r('/etc/sysusers.d') }
  }
  return { unitDir: r('/etc/systemd/system'), envDir: r('/etc/default'), sysusersDir: r('/etc/sysusers.d') }
}

/** The system service's MESH_HOME when none is named: the state directory systemd owns. */
export function defaultSystemHome (instance: string | undefined): string {
  return path.join(SYSTEM_STATE_ROOT, STATE_DIRECTORY, ...(instance === undefined ? [] : [instance]))
}

/** The environment file as seen from the running system (the unit names it; `root` is not part of it). */
function envFileInUnit (spec: ServiceSpec, dirs: ServiceDirs, root: string): string {
  const file = path.join(dirs.envDir, envFileName(spec))
  return root === '/' ? file : '/' + path.relative(root, file)
}

/** A word in double quotes when it holds a space, quote or backslash (systemd unquotes such words). */
function quoted (w: string): string {
  return /[\s"'\\]/.test(w) ? `"${w.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : w
}

/** One word of ExecStart=: `%` (specifiers) and `$` (variables) made literal, then quoted. */
function execWord (w: string): string {
  return quoted(w.replace(/%/g, '%%').replace(/\$/g, '$$$$'))
}

/**
 * The unit. Hardening keeps `systemd-analyze security` exposure well under 5 (a test checks it):
 * a dedicated user, no capabilities, read-only OS, only MESH_HOME writable, the address families
 * the agent uses (AF_UNIX: its local API socket; AF_INET/AF_INET6: beacons, libp2p, the tensor
 * plane, the API; AF_NETLINK: listing interfaces for multicast). Never MemoryDenyWriteExecute:
 * V8 compiles code into writable-executable memory and the agent would die at its first JIT.
 */
export function renderUnit (spec: ServiceSpec, dirs: ServiceDirs, root = '/'): string {
  const system = spec.scope === 'system'
  const inStateDir = system && spec.home === defaultSystemHome(spec.instance)
  const lines = [
    MARKER,
    '[Unit]',
    `Description=mesh agent${spec.instance === undefined ? '' : ` (${spec.instance})`}: LAN pool member for LLM inference`,
    // beacons and libp2p bind to interfaces: start once the network is up
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `EnvironmentFile=-${envFileInUnit(spec, dirs, root)}`,
    `ExecStart=${[spec.node, spec.meshScript, 'start', '--foreground'].map(execWord).join(' ')}`,
    'Restart=on-failure',
    'RestartSec=2',
    // exit 2 is a usage error (no identity, bad settings): restarting cannot fix it
    'RestartPreventExitStatus=2',
    // mesh stop's goodbye and the ring's clean leave happen on SIGTERM
    'KillSignal=SIGTERM',
    'TimeoutStopSec=15',
    ...(system ? [`User=${spec.runAs}`, `Group=${spec.runAs}`] : []),
    ...(inStateDir
      ? [`StateDirectory=${path.relative(SYSTEM_STATE_ROOT, spec.home)}`, 'StateDirectoryMode=0700']
      : [`ReadWritePaths=${quoted(spec.home.replace(/%/g, '%%'))}`]),
    'UMask=0077',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    // the code may live under a home directory (npm prefix ~/.local): readable, not writable
    ...(system ? ['ProtectHome=read-only'] : []),
    'PrivateTmp=yes',
    'PrivateMounts=yes',
    'PrivateDevices=yes',
    'DevicePolicy=closed',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'ProtectProc=invisible',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service',
    // a call outside the set fails with EPERM instead of killing the agent (SIGSYS)
    'SystemCallErrorNumber=EPERM',
    // UDP multicast and ports above 1024 need no capability
    'CapabilityBoundingSet=',
    'AmbientCapabilities=',
    '',
    '[Install]',
    `WantedBy=${system ? 'multi-user.target' : 'default.target'}`
  ]
  return lines.join('\n') + '\n'
}

/** systemd's EnvironmentFile syntax: KEY="value" with \ and " escaped. */
function envLine (key: string, value: string): string {
  return `${key}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

export function renderEnvFile (spec: ServiceSpec): string {
  const e = spec.env
  const pairs: Array<[string, string | undefined]> = [
    ['MESH_HOME', spec.home],
    ['MESH_MODEL', e.model],
    ['MESH_TOKENIZER', e.tokenizer],
    ['MESH_API', e.api],
    ['MESH_RELAYS', e.relays === undefined || e.relays.length === 0 ? undefined : e.relays.join(',')],
    ['MESH_CONTROL_PLANE', e.controlPlane],
    ['MESH_THREADS', e.threads === undefined ? undefined : String(e.threads)]
  ]
  return [MARKER, ...pairs.filter((p): p is [string, string] => p[1] !== undefined).map(([k, v]) => envLine(k, v))].join('\n') + '\n'
}

/** One `u` line: a system user with its own group, no login shell, home in the state directory. */
export function renderSysusers (spec: ServiceSpec): string {
  return `${MARKER}\nu ${spec.runAs} - "mesh agent" ${path.join(SYSTEM_STATE_ROOT, STATE_DIRECTORY)} /usr/sbin/nologin\n`
}

/** The env file is 0600: its owner (root, or the user for --user) alone reads it. */
export const ENV_FILE_MODE = 0o600
export const UNIT_FILE_MODE = 0o644

/** A file install writes: where, what, and with which mode. */
export interface PlannedFile { readonly path: string, readonly content: string, readonly mode: number }

/** What a file looks like on disk now (null: absent). */
export interface FileState { readonly content: string, readonly mode: number }

export function serviceFiles (spec: ServiceSpec, dirs: ServiceDirs, root = '/'): PlannedFile[] {
  return [
    { path: path.join(dirs.unitDir, unitFileName(spec)), content: renderUnit(spec, dirs, root), mode: UNIT_FILE_MODE },
    { path: path.join(dirs.envDir, envFileName(spec)), content: renderEnvFile(spec), mode: ENV_FILE_MODE },
    ...(spec.scope === 'system' ? [{ path: path.join(dirs.sysusersDir, SYSUSERS_FILE), content: renderSysusers(spec), mode: UNIT_FILE_MODE }] : [])
  ]
}

/**
 * Install's decision, pure: nothing there yet → create (write, enable, start); everything as wanted
 * → unchanged (touch nothing, no restart); anything else → update (rewrite what differs, restart).
 */
export type InstallDecision =
  | { readonly kind: 'create', readonly write: readonly PlannedFile[] }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'update', readonly write: readonly PlannedFile[] }

export function decideInstall (wanted: readonly PlannedFile[], current: ReadonlyArray<FileState | null>): InstallDecision {
  const differs = wanted.filter((f, i) => {
    const c = current[i] ?? null
    return c === null || c.content !== f.content || (c.mode & 0o777) !== f.mode
  })
  if (differs.length === 0) return { kind: 'unchanged' }
  // the unit file is first: without it, this is a first install whatever else lies around
  if ((current[0] ?? null) === null) return { kind: 'create', write: wanted }
  return { kind: 'update', write: differs }
}

/** The KEY="value" lines renderEnvFile writes (comments and blank lines skipped), for status and doctor. */
export function parseEnvFile (text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(?:"((?:[^"\\]|\\.)*)"|(.*))$/.exec(line.trim())
    if (m === null) continue
    out[m[1] as string] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '')
  }
  return out
}
