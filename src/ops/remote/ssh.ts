/**
 * Thin I/O over the system `ssh`, so the user's ~/.ssh/config, agent, ProxyJump and known_hosts work
 * as they expect. Every call has a deadline enforced by killing ssh (and whatever it spawned, e.g. a
 * ProxyCommand): a remote command that hangs never hangs mesh.
 *
 * Exports: SshTarget, parseTarget, SSH_OPTIONS, sshArgs, SshResult, runSsh, runSshInteractive, shQuote.
 */
import { spawn } from 'node:child_process'
import { UsageError } from '../../errors.js'

export interface SshTarget {
  /** user@host or host, as typed (ssh resolves aliases of ~/.ssh/config) */
  readonly destination: string
  readonly port?: number | undefined
  /** a private key file (ssh -i) */
  readonly identity?: string | undefined
}

/** `user@host` as typed: never an option (a leading '-' would reach ssh as one), no spaces. */
export function parseTarget (text: string, port?: number, identity?: string): SshTarget {
  if (!/^([A-Za-z0-9._][A-Za-z0-9._-]*@)?[A-Za-z0-9_.:[\]][A-Za-z0-9_.:%[\]-]*$/.test(text)) {
    throw new UsageError(`${JSON.stringify(text.slice(0, 60))} is not user@host or host; give the box as ssh takes it, e.g. pi@192.168.1.20`)
  }
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new UsageError(`--port must be 1-65535 (got ${port})`)
  return { destination: text, port, identity }
}

/**
 * The options: never prompt (BatchMode), give up connecting after 10 s, trust a host seen
 * the first time but refuse one whose key changed (accept-new).
 */
export const SSH_OPTIONS = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'StrictHostKeyChecking=accept-new'] as const

/**
 * ssh's arguments for one remote command. `configFile` (env MESH_SSH_CONFIG) is ssh -F, for tests
 * and for users who keep a separate config for their boxes; `verbose` adds -v for the host key line.
 */
export function sshArgs (t: SshTarget, command: string, opts: { configFile?: string | undefined, verbose?: boolean, tty?: boolean } = {}): string[] {
  return [
    ...(opts.configFile !== undefined ? ['-F', opts.configFile] : []),
    ...SSH_OPTIONS,
    ...(opts.tty === true ? ['-t'] : []),
    ...(opts.verbose === true ? ['-v'] : []),
    ...(t.port !== undefined ? ['-p', String(t.port)] : []),
    ...(t.identity !== undefined ? ['-i', t.identity, '-o', 'IdentitiesOnly=yes'] : []),
    '--', t.destination, command
  ]
}

export interface SshResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** true when the deadline passed and ssh was killed */
  readonly timedOut: boolean
  readonly ms: number
}

/** stdout and stderr kept at most (a remote that floods us is cut, not buffered without end) */
const MAX_OUTPUT = 4 << 20

/** Run `command` on the target with `input` on its stdin; resolves (never rejects) when ssh exits or is killed. */
function configFileOf (env: NodeJS.ProcessEnv): string | undefined {
  return env.MESH_SSH_CONFIG !== undefined && env.MESH_SSH_CONFIG !== '' ? env.MESH_SSH_CONFIG : undefined
}

export async function runSsh (t: SshTarget, command: string, opts: { timeoutMs: number, input?: Uint8Array | undefined, verbose?: boolean, env?: NodeJS.ProcessEnv }): Promise<SshResult> {
  const env = opts.env ?? process.env
  const configFile = configFileOf(env)
  const t0 = performance.now()
  // its own process group, so the kill reaches a ProxyCommand too
  const child = spawn('ssh', sshArgs(t, command, { configFile, verbose: opts.verbose }), { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env })
  const out: Buffer[] = []; const err: Buffer[] = []
  let outBytes = 0; let errBytes = 0
  child.stdout.on('data', (b: Buffer) => { if (outBytes < MAX_OUTPUT) { out.push(b); outBytes += b.length } })
  child.stderr.on('data', (b: Buffer) => { if (errBytes < MAX_OUTPUT) { err.push(b); errBytes += b.length } })
  child.stdin.on('error', () => {}) // the remote may exit before reading all of its input
  child.stdin.end(opts.input === undefined ? undefined : Buffer.from(opts.input.buffer, opts.input.byteOffset, opts.input.byteLength))
  let timedOut = false
  const kill = (): void => {
    try { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL') } catch { child.kill('SIGKILL') }
  }
  const timer = setTimeout(() => { timedOut = true; kill() }, opts.timeoutMs)
  const code = await new Promise<number | null>((resolve) => {
    // no ssh binary: reported like a failed connection, with the reason
    child.on('error', (e) => { err.push(Buffer.from(`ssh: cannot run ssh: ${e.message}\n`)); resolve(255) })
    child.on('close', (c) => { resolve(c) })
  })
  clearTimeout(timer)
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut, ms: performance.now() - t0 }
}

/**
 * A command with the terminal attached (ssh -t), for a person to answer sudo's password prompt;
 * killed after `timeoutMs` like the others. Resolves with the exit status.
 */
export async function runSshInteractive (t: SshTarget, command: string, timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<number | null> {
  const child = spawn('ssh', sshArgs(t, command, { configFile: configFileOf(env), tty: true }), { stdio: 'inherit', env })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  const code = await new Promise<number | null>((resolve) => { child.on('error', () => { resolve(255) }); child.on('close', (c) => { resolve(c) }) })
  clearTimeout(timer)
  return code
}

/** One POSIX shell word: single quotes, with each ' written as '\'' */
export function shQuote (s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`
}
