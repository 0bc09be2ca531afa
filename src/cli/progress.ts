import cliProgress from 'cli-progress'
import type { CliIO } from '../process/io.js'

/**
 * Show a progress bar only for loads still running after this long; quick ones stay quiet.
 * MESH_PROGRESS_AFTER_MS lowers it, so a test can see the bar without a slow load.
 */
const showAfterMs = (): number => {
  const ms = Number(process.env.MESH_PROGRESS_AFTER_MS ?? 'unset')
  return ms >= 0 ? ms : 1000
}

export interface Progress { onProgress: (done: number, total: number) => void, done: () => void }

/**
 * A progress callback that draws a bar on stderr, but only on a terminal and only once the work
 * has taken more than a second (or MESH_PROGRESS_AFTER_MS). `format` is cli-progress's, with
 * {value} and {total} in the units `scale` gives. Call `done` when the work ends (also on failure).
 */
function terminalProgress (io: CliIO, format: string, scale: (n: number) => number, now: () => number): Progress {
  const start = now()
  const after = showAfterMs()
  let bar: cliProgress.SingleBar | null = null
  return {
    onProgress: (done, total) => {
      if (!io.isTTY) return
      if (bar === null) {
        if (now() - start < after || done >= total) return
        bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
        bar.start(scale(total), scale(done))
      }
      bar.update(scale(done))
    },
    done: () => { bar?.stop(); bar = null }
  }
}

/** Bytes read of a file, in MiB. */
export function byteProgress (io: CliIO, label: string, now: () => number = () => performance.now()): Progress {
  return terminalProgress(io, `${label} [{bar}] {percentage}% {value}/{total} MiB`, (bytes) => Math.round(bytes / (1 << 20)), now)
}

/** Items of some work done (`unit`: what they are, e.g. "chunks"). */
export function countProgress (io: CliIO, label: string, unit: string, now: () => number = () => performance.now()): Progress {
  return terminalProgress(io, `${label} [{bar}] {value}/{total} ${unit}`, (n) => n, now)
}
