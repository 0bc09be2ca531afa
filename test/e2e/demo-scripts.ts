/**
 * Run scripts/device1.sh and scripts/device2.sh inside a NetnsLab node as a user would: in their
 * own process group (a terminal's foreground job), output collected with the time each line came,
 * and stopped with SIGINT to the whole group, as Ctrl+C does.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { LabNode } from './netns.js'

export const DEVICE1_SH = fileURLToPath(new URL('../../scripts/device1.sh', import.meta.url))
export const DEVICE2_SH = fileURLToPath(new URL('../../scripts/device2.sh', import.meta.url))

export interface ScriptLine { atMs: number, text: string }

export class ScriptRun {
  readonly lines: ScriptLine[] = []
  readonly startedAt = performance.now()
  readonly exited: Promise<number>
  private readonly child: ChildProcess

  constructor (readonly node: LabNode, script: string, opts: { cwd: string, env?: NodeJS.ProcessEnv }) {
    this.child = spawn('ip', ['netns', 'exec', node.ns, 'bash', script], {
      cwd: opts.cwd,
      env: { ...process.env, MESH_HOME: node.home, ...opts.env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const collect = (chunk: Buffer): void => {
      const at = performance.now() - this.startedAt
      for (const text of chunk.toString('utf8').split('\n')) if (text !== '') this.lines.push({ atMs: at, text })
    }
    this.child.stdout?.on('data', collect)
    this.child.stderr?.on('data', collect)
    this.exited = new Promise((resolve) => { this.child.once('exit', (code, signal) => { resolve(code ?? (signal === null ? 1 : 128)) }) })
  }

  /** ms after start of the first line matching `re`, undefined if none yet */
  lineAt (re: RegExp): number | undefined {
    return this.lines.find((l) => re.test(l.text))?.atMs
  }

  /** The script's own messages (the agent's JSON log lines left out). */
  text (): string {
    return this.lines.filter((l) => !l.text.startsWith('{')).map((l) => l.text).join('\n')
  }

  /** Ctrl+C: SIGINT to the script's process group; resolves with its exit code. */
  async interrupt (timeoutMs = 20_000): Promise<number> {
    const pid = this.child.pid
    if (pid !== undefined && this.child.exitCode === null) {
      try { process.kill(-pid, 'SIGINT') } catch { /* already gone */ }
    }
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`${this.node.name}: the script did not stop within ${timeoutMs} ms of SIGINT`)) }, timeoutMs)
    })
    try { return await Promise.race([this.exited, timeout]) } finally { clearTimeout(timer) }
  }
}

/** Processes still running in a node's namespace. */
export function namespacePids (node: LabNode): string[] {
  return execFileSync('ip', ['netns', 'pids', node.ns], { encoding: 'utf8' }).split('\n').filter((p) => p.trim() !== '')
}
