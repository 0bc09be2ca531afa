import fs from 'node:fs'
import { writeFileAtomic } from '../atomic-file.js'
import { AgentAlreadyRunningError } from './errors.js'
import { pidFile, runDir } from './paths.js'

export function readPid (home: string): number | undefined {
  let text: string
  try { text = fs.readFileSync(pidFile(home), 'utf8') } catch { return undefined }
  const pid = Number(text.trim())
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' // alive, but someone else's
  }
  // an exited agent whose parent has not reaped it yet (a detached agent's parent is init) is a zombie
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return true // no /proc (macOS)
  }
}

/**
 * Whether `pid` may still be an agent. After a crash and a reboot the number can belong to any
 * process: where /proc tells (Linux), it must be running mesh.
 */
function isAgentProcess (pid: number): boolean {
  if (!isAlive(pid)) return false
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('mesh')
  } catch {
    return true // no /proc (macOS) or not ours to read: trust the liveness check
  }
}

/**
 * Take the pid file for this process. Another live agent's pid means it is already running; a pid
 * file whose process is gone was left by a crash and is replaced (the caller logs that).
 * Returns the stale pid it replaced, if any.
 */
export function claimPidFile (home: string): number | undefined {
  fs.mkdirSync(runDir(home), { recursive: true, mode: 0o700 })
  const old = readPid(home)
  if (old !== undefined && old !== process.pid && isAgentProcess(old)) throw new AgentAlreadyRunningError(home, old)
  writeFileAtomic(pidFile(home), `${process.pid}\n`, 0o600)
  return old !== undefined && old !== process.pid ? old : undefined
}

/** Remove the pid file if it is still ours. */
export function releasePidFile (home: string): void {
  if (readPid(home) === process.pid) fs.rmSync(pidFile(home), { force: true })
}
