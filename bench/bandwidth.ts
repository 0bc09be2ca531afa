/**
 * How much memory bandwidth one core gets alone and what cores get together: each process (pinned
 * to its own core with taskset) runs the native matvec over 440 MB of weights on huge pages for
 * 3 s, first one process, then one per core at once. Bounds what a ring of members on one machine
 * can gain over a single member on a memory-bound model (bench/README.md). Never asserted anywhere.
 *
 *   npm run build && node --import tsx bench/bandwidth.ts
 */
import { execFile } from 'node:child_process'
import os from 'node:os'
import { promisify } from 'node:util'
import { nativeKernels, onHugePages } from '../src/inference/native.js'

const ROWS = 2048; const COLS = 768; const MATRICES = 70 // 440 MB, far past every cache

function stream (): number {
  const k = nativeKernels()
  if (typeof k === 'string') throw new Error(k)
  const all = new Float32Array(onHugePages(new Uint8Array(MATRICES * ROWS * COLS * 4)).buffer).fill(0.5)
  const x = new Float32Array(COLS).fill(1); const y = new Float32Array(ROWS)
  const start = performance.now(); let calls = 0
  while (performance.now() - start < 3000) {
    const m = calls++ % MATRICES
    k.matvec(y, all.subarray(m * ROWS * COLS, (m + 1) * ROWS * COLS), COLS, x, ROWS, COLS, 1)
  }
  return calls * ROWS * COLS * 4 / ((performance.now() - start) / 1000) / 1e9
}

async function pinned (cores: number[]): Promise<number[]> {
  const script = new URL(import.meta.url).pathname
  return await Promise.all(cores.map(async (c) => {
    const { stdout } = await promisify(execFile)('taskset', ['-c', String(c), process.execPath, '--import', 'tsx', script, 'stream'])
    return Number(stdout.trim())
  }))
}

if (process.argv[2] === 'stream') {
  console.log(stream().toFixed(2))
} else {
  const cores = Array.from({ length: os.availableParallelism() }, (_, i) => i)
  const gb = (xs: number[]): string => xs.map((x) => x.toFixed(1)).join(' + ')
  console.log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, ${cores.length} cores`)
  const alone = await pinned([0])
  console.log(`one process on core 0: ${gb(alone)} GB/s`)
  const together = await pinned(cores)
  console.log(`one process per core at once: ${gb(together)} = ${together.reduce((a, b) => a + b, 0).toFixed(1)} GB/s (${(together.reduce((a, b) => a + b, 0) / alone[0]).toFixed(2)}× one core)`)
}
