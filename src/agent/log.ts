import fs from 'node:fs'
import path from 'node:path'
import pino, { type Logger } from 'pino'

export type { Logger }

export function agentLogFile (home: string): string { return path.join(home, 'logs', 'agent.log') }

/**
 * pino JSON lines to MESH_HOME/logs/agent.log; in the foreground also to stderr, so Ctrl+C users
 * see what happens. Level from MESH_LOG_LEVEL (default info).
 */
export function createAgentLogger (home: string, opts: { level?: string | undefined, stderr: boolean }): Logger {
  const file = agentLogFile(home)
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  const streams: pino.StreamEntry[] = [{ stream: pino.destination({ dest: file, append: true, sync: true }) }]
  if (opts.stderr) streams.push({ stream: process.stderr })
  return pino({ level: opts.level ?? 'info', base: { pid: process.pid } }, pino.multistream(streams))
}

/**
 * Warnings about untrusted input, at most one per key per period, with the count of those held
 * back: a flood of bad packets must not fill the log.
 */
export class RateLimitedWarner {
  private readonly last = new Map<string, { at: number, suppressed: number }>()
  constructor (private readonly log: Logger, private readonly periodMs = 60_000, private readonly maxKeys = 1024) {}

  warn (key: string, now: number, fields: Record<string, unknown>, msg: string): void {
    const prev = this.last.get(key)
    if (prev !== undefined && now - prev.at < this.periodMs) { prev.suppressed++; return }
    if (prev === undefined && this.last.size >= this.maxKeys) this.last.delete(this.last.keys().next().value as string)
    this.last.set(key, { at: now, suppressed: 0 })
    this.log.warn({ ...fields, ...(prev !== undefined && prev.suppressed > 0 ? { suppressed: prev.suppressed } : {}) }, msg)
  }
}
