/**
 * The WebAssembly SIMD matrix-vector kernel on several threads at once. Every thread instantiates
 * the same kernel over one shared WebAssembly memory that holds the weights and the activations,
 * so nothing is copied between threads. Each call is a round: the calling thread cuts the products
 * into row chunks in a small shared control block, wakes the workers, and every thread claims and
 * runs chunks until none is left; then the caller waits for the chunks still running. Waking and
 * waiting use Atomics.wait/notify after a short spin, not postMessage, which costs tens of
 * microseconds per message: a token of the stories110M shape takes 49 rounds.
 */
import { Worker } from 'node:worker_threads'
import { instantiateMatvec, matvecModule } from './wasm-matvec.js'

/** out = a `rows`×`cols` block of W, rows `strideBytes` apart, times x. Byte offsets into the memory. */
export interface MatvecJob { readonly out: number, readonly w: number, readonly strideBytes: number, readonly x: number, readonly rows: number, readonly cols: number }

/** Products run together in one round (all reading inputs the round does not write). */
export interface ParallelMatvec {
  readonly threads: number
  run: (jobs: readonly MatvecJob[]) => void
  /** Chunks run so far, and how many of them the workers ran (the rest ran on the calling thread). */
  chunks: () => { total: number, byWorkers: number }
  close: () => Promise<void>
}

export interface ParallelMatvecOptions {
  /**
   * Products smaller than this many weights run on the calling thread alone: for them a round
   * trip to the workers costs more than it saves. Default from bench/README.md (threads table).
   */
  readonly minParallelWeights?: number
  /** Weights per chunk of a split product (tests make it tiny to split small models). */
  readonly chunkWeights?: number
}

/**
 * Below about 32K weights (128 KiB: 64×512, but not 288×288 = 83K) a product takes a few
 * microseconds on one thread, about what waking a worker and waiting for it costs.
 */
const MIN_PARALLEL_WEIGHTS = 32768
/**
 * Larger products are cut into chunks of about this many weights (256 KiB, 10-20 µs) that the
 * threads claim one at a time: a thread that the OS does not schedule in time (this machine is
 * shared) leaves its chunks to the others instead of holding up the round.
 */
const CHUNK_WEIGHTS = 65536
const MAX_CHUNKS = 4096
/** A claim word's chunk index that no round reaches (MAX_CHUNKS < CLOSED): its round takes no more claims. */
const CLOSED = 0xffff
const JOB_INTS = 6
/** The longest a thread may sit on one round's chunks before the product is given up. */
const STALL_MS = 10_000
// control block (Int32Array): the claim word (round number << 16 | next unclaimed chunk), chunks
// finished, chunks in the round, quit and error flags, chunks the workers ran, then the round's
// chunks, JOB_INTS each
const CLAIM = 0
const DONE = 1
const COUNT = 2
const QUIT = 3
const FAILED = 4
const BY_WORKERS = 5
const TABLE = 8
/**
 * Polls of the control block before sleeping in Atomics.wait, about 50 µs at the 12 ns per poll
 * measured here: the gaps between the rounds of one token (attention, norms) are mostly shorter,
 * and a futex wake-up costs tens of microseconds. Between tokens the workers sleep.
 */
const SPINS = 4096

/** A round's work as chunks: small products whole, larger ones cut by rows into CHUNK_WEIGHTS pieces. */
export function chunkRound (jobs: readonly MatvecJob[], minParallelWeights: number, chunkWeights = CHUNK_WEIGHTS): MatvecJob[] {
  const chunks: MatvecJob[] = []
  for (const job of jobs) {
    const weights = job.rows * job.cols
    const pieces = weights < minParallelWeights ? 1 : Math.max(1, Math.round(weights / chunkWeights))
    for (let p = 0; p < pieces; p++) {
      const start = Math.floor((job.rows * p) / pieces)
      const end = Math.floor((job.rows * (p + 1)) / pieces)
      if (end > start) chunks.push({ ...job, out: job.out + 4 * start, w: job.w + start * job.strideBytes, rows: end - start })
    }
  }
  return chunks
}

/**
 * Claim and run chunks of the round in `ctl` until none is left. Shared by the calling thread
 * and the workers, so it must not refer to anything outside itself (workers get it as source).
 * A claim is a compare-and-swap on the whole claim word, so a thread still holding an older
 * round's word can never take a chunk of a newer round. Indexes are the control block's
 * layout above, as literals: 0 claim word, 1 done, 2 count, 4 failed, 8 the table.
 */
function claimChunks (ctl: Int32Array, matvec: (...args: number[]) => void, round: number): number {
  const n = Atomics.load(ctl, 2)
  let ran = 0
  let word = Atomics.load(ctl, 0)
  while ((word >>> 16) === round && (word & 0xffff) < n) {
    const seen = Atomics.compareExchange(ctl, 0, word, word + 1)
    if (seen !== word) {
      word = seen
      continue
    }
    const at = 8 + 6 * (word & 0xffff)
    try {
      matvec(ctl[at], ctl[at + 1], ctl[at + 2], ctl[at + 3], ctl[at + 4], ctl[at + 5])
    } catch {
      Atomics.store(ctl, 4, 1)
    }
    ran++
    if (Atomics.add(ctl, 1, 1) + 1 === n) Atomics.notify(ctl, 1)
    word = Atomics.load(ctl, 0)
  }
  return ran
}

/** A worker: wait for a new round (spin, then sleep), help with it, repeat until told to quit (3). */
function workerMain ({ module, memory, control, spins }: { module: WebAssembly.Module, memory: WebAssembly.Memory, control: SharedArrayBuffer, spins: number }): void {
  const matvec = new WebAssembly.Instance(module, { env: { memory } }).exports.matvec as (...args: number[]) => void
  const ctl = new Int32Array(control)
  let round = 0
  for (;;) {
    let word = Atomics.load(ctl, 0)
    for (let i = 0; (word >>> 16) === round && i < spins; i++) word = Atomics.load(ctl, 0)
    if ((word >>> 16) === round) {
      Atomics.wait(ctl, 0, word)
      continue
    }
    if (Atomics.load(ctl, 3) !== 0) return
    round = word >>> 16
    Atomics.add(ctl, 5, claimChunks(ctl, matvec, round))
  }
}

/**
 * Run the kernel on `threads` threads over a shared `memory`: the calling thread plus
 * threads - 1 workers. With one thread no worker starts and every product runs in place.
 */
export async function parallelMatvec (memory: WebAssembly.Memory, threads: number, opts: ParallelMatvecOptions = {}): Promise<ParallelMatvec> {
  if (!(memory.buffer instanceof SharedArrayBuffer)) throw new Error('parallel matvec needs a shared WebAssembly memory')
  const minParallelWeights = opts.minParallelWeights ?? MIN_PARALLEL_WEIGHTS
  const chunkWeights = opts.chunkWeights ?? CHUNK_WEIGHTS
  const module = matvecModule()
  const matvec = instantiateMatvec(memory, module)
  const control = new SharedArrayBuffer(4 * (TABLE + MAX_CHUNKS * JOB_INTS))
  const ctl = new Int32Array(control)
  const source = `${claimChunks.toString()}\n(${workerMain.toString()})(require('node:worker_threads').workerData)`
  const workers = Array.from({ length: threads - 1 }, () => new Worker(source, { eval: true, workerData: { module, memory, control, spins: SPINS } }))
  await Promise.all(workers.map(async (w) => await new Promise<void>((resolve, reject) => {
    w.once('online', resolve)
    w.once('error', reject)
  })))
  for (const w of workers) w.unref() // a forgotten close must not keep the process alive

  let round = 0
  /**
   * Publish a round: close the last round's claims, then its table and count, then the claim word
   * that makes it visible. Closing first matters: a thread that still holds the last round's word
   * (every chunk claimed) could otherwise read the new, larger count and claim one more "old"
   * chunk from the new table, running a chunk twice and pushing DONE past the count, so the
   * round never looked finished (the 10 s stalls seen in full test runs).
   */
  const publish = (chunks: readonly MatvecJob[], quit = false): void => {
    Atomics.store(ctl, CLAIM, (round << 16) | CLOSED)
    chunks.forEach((j, k) => ctl.set([j.out, j.w, j.strideBytes, j.x, j.rows, j.cols], TABLE + JOB_INTS * k))
    Atomics.store(ctl, COUNT, chunks.length)
    Atomics.store(ctl, DONE, 0)
    if (quit) Atomics.store(ctl, QUIT, 1)
    round = (round + 1) & 0x7fff
    Atomics.store(ctl, CLAIM, round << 16)
    Atomics.notify(ctl, CLAIM)
  }
  let closed: Promise<void> | undefined
  let total = 0
  return {
    threads,
    chunks: () => ({ total, byWorkers: Atomics.load(ctl, BY_WORKERS) }),
    run: (jobs) => {
      const chunks = chunkRound(jobs, minParallelWeights, chunkWeights)
      total += chunks.length
      if (threads === 1 || chunks.length === 1 || chunks.length > MAX_CHUNKS) {
        for (const j of chunks) matvec(j.out, j.w, j.strideBytes, j.x, j.rows, j.cols)
        return
      }
      publish(chunks)
      claimChunks(ctl, matvec, round)
      let done = Atomics.load(ctl, DONE)
      for (let i = 0; done !== chunks.length && i < SPINS; i++) done = Atomics.load(ctl, DONE)
      // bounded: a worker that died mid-round must fail the product, not block this thread forever
      while (done !== chunks.length) {
        if (Atomics.wait(ctl, DONE, done, STALL_MS) === 'timed-out' && Atomics.load(ctl, DONE) === done) {
          throw new Error(`wasm worker threads made no progress for ${STALL_MS} ms; run with --threads 1`)
        }
        done = Atomics.load(ctl, DONE)
      }
      if (Atomics.load(ctl, FAILED) !== 0) throw new Error('a wasm matvec chunk failed (a product outside the memory)')
    },
    close: async () => {
      closed ??= (async () => {
        const exited = workers.map(async (w) => {
          w.ref()
          await new Promise((resolve) => w.once('exit', resolve))
        })
        publish([], true)
        await Promise.all(exited)
      })()
      await closed
    }
  }
}
