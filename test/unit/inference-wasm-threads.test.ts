import { afterEach, describe, expect, it } from 'vitest'
import { instantiateMatvec } from '../../src/inference/wasm-matvec.js'
import { chunkRound, parallelMatvec, type MatvecJob, type ParallelMatvec } from '../../src/inference/wasm-threads.js'

describe('chunkRound', () => {
  const job = (rows: number, cols: number, strideBytes = 4 * cols): MatvecJob => ({ out: 1000, w: 8000, strideBytes, x: 40, rows, cols })

  it('keeps small products whole and cuts large ones into consecutive row ranges covering every row once', () => {
    const small = job(64, 64)
    const large = job(2048, 768, 4 * 2048) // a column block: rows 2048 floats apart
    const chunks = chunkRound([small, large], 32768, 65536)
    expect(chunks[0]).toEqual(small)
    const parts = chunks.slice(1)
    expect(parts).toHaveLength(24) // 2048·768 / 65536
    let row = 0
    for (const p of parts) {
      expect(p).toMatchObject({ out: 1000 + 4 * row, w: 8000 + row * 4 * 2048, strideBytes: 4 * 2048, x: 40, cols: 768 })
      row += p.rows
    }
    expect(row).toBe(2048)
  })

  it('never makes more chunks than rows, nor empty ones', () => {
    const chunks = chunkRound([job(3, 100000)], 0, 1000)
    expect(chunks.map((c) => c.rows)).toEqual([1, 1, 1])
  })
})

describe('parallelMatvec', () => {
  const PAGE = 65536
  let pool: ParallelMatvec | null = null
  afterEach(async () => { await pool?.close(); pool = null })

  /** A shared memory with three random matrices and an input vector, and the byte layout. */
  function setup (): { memory: WebAssembly.Memory, jobs: (outAt: number) => MatvecJob[], outBytes: number, freeAt: number } {
    const shapes: Array<[number, number]> = [[300, 200], [517, 96], [64, 61]]
    const floats = shapes.reduce((n, [r, c]) => n + r * c, 0)
    const pages = Math.ceil((4 * (floats + 400 + 2000)) / PAGE)
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true })
    const all = new Float32Array(memory.buffer)
    for (let i = 0; i < floats + 200; i++) all[i] = Math.random() - 0.5
    const xAt = 4 * floats
    const jobs = (outAt: number): MatvecJob[] => {
      let w = 0
      let out = outAt
      return shapes.map(([rows, cols], k) => {
        // the second matrix is read as a column block: its first 50 of 96 columns
        const job = { out, w, strideBytes: 4 * cols, x: xAt, rows, cols: k === 1 ? 50 : cols }
        w += 4 * rows * cols
        out += 4 * rows
        return job
      })
    }
    return { memory, jobs, outBytes: 4 * shapes.reduce((n, [r]) => n + r, 0), freeAt: xAt + 4 * 200 }
  }

  it('gives bit-for-bit the single-thread results, with workers taking part', async () => {
    const { memory, jobs, outBytes, freeAt } = setup()
    const expectedAt = freeAt
    const actualAt = expectedAt + outBytes
    const single = instantiateMatvec(memory)
    for (const j of jobs(expectedAt)) single(j.out, j.w, j.strideBytes, j.x, j.rows, j.cols)
    const expected = new Float32Array(memory.buffer, expectedAt, outBytes / 4)
    const actual = new Float32Array(memory.buffer, actualAt, outBytes / 4)

    pool = await parallelMatvec(memory, 3, { minParallelWeights: 0, chunkWeights: 500 })
    const deadline = Date.now() + 20000
    do {
      actual.fill(NaN)
      pool.run(jobs(actualAt))
      expect(Array.from(actual)).toEqual(Array.from(expected))
    } while (pool.chunks().byWorkers === 0 && Date.now() < deadline) // the OS decides when workers run
    expect(pool.chunks().byWorkers).toBeGreaterThan(0)
    expect(pool.chunks().byWorkers).toBeLessThanOrEqual(pool.chunks().total)
  })

  it('keeps up through many short rounds of changing size (a stale claim once ran a chunk twice and stalled a round)', async () => {
    const { memory, jobs, outBytes, freeAt } = setup()
    const single = instantiateMatvec(memory)
    for (const j of jobs(freeAt)) single(j.out, j.w, j.strideBytes, j.x, j.rows, j.cols)
    const expected = Array.from(new Float32Array(memory.buffer, freeAt, outBytes / 4))
    const actualAt = freeAt + outBytes
    pool = await parallelMatvec(memory, 3, { minParallelWeights: 0, chunkWeights: 64 })
    // rounds of 1 to 3 products in tiny chunks: the round's chunk count changes every time
    for (let r = 0; r < 150000; r++) pool.run(jobs(actualAt).slice(0, 1 + (r % 3)).map((j) => ({ ...j, rows: Math.min(j.rows, 8 + (r % 5)) })))
    pool.run(jobs(actualAt))
    expect(Array.from(new Float32Array(memory.buffer, actualAt, outBytes / 4))).toEqual(expected)
  })

  it('runs everything on the calling thread with one thread, and closes twice without hanging', async () => {
    const { memory, jobs, freeAt } = setup()
    pool = await parallelMatvec(memory, 1, { minParallelWeights: 0, chunkWeights: 500 })
    pool.run(jobs(freeAt))
    expect(pool.chunks().total).toBeGreaterThan(3)
    expect(pool.chunks().byWorkers).toBe(0)
    await pool.close()
  })

  it('refuses a memory that is not shared', async () => {
    await expect(parallelMatvec(new WebAssembly.Memory({ initial: 1 }), 2)).rejects.toThrow(/shared WebAssembly memory/)
  })
})
