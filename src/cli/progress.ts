import cliProgress from 'cli-progress'
import type { CliIO } from './io.js'

/**
 * Show a progress bar only for loads still running after this long; quick ones stay quiet.
 * MESH_PROGRESS_AFTER_MS lowers it, so a test can see the bar without a slow load.
 */
const showAfterMs = (): number => {
  const ms = Number(process.env.MESH_PROGRESS_AFTER_MS ?? 'unset')
  return ms >= 0 ? ms : 1000
}

/**
 * A byte-progress callback that draws a bar on stderr, but only on a terminal and only once the
 * load has taken more than a second (or MESH_PROGRESS_AFTER_MS). Call `done` when the load ends
 * (also on failure).
 */
export function byteProgress (io: CliIO, label: string, now: () => number = () => performance.now()): { onProgress: (read: number, total: number) => void, done: () => void } {
  const start = now()
  const after = showAfterMs()
  let bar: cliProgress.SingleBar | null = null
  const mib = (bytes: number): number => Math.round(bytes / (1 << 20))
  return {
    onProgress: (read, total) => {
      if (!io.isTTY) return
      if (bar === null) {
        if (now() - start < after || read >= total) return
        bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total} MiB`, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
        bar.start(mib(total), mib(read))
      }
      bar.update(mib(read))
    },
    done: () => { bar?.stop(); bar = null }
  }
}
