/**
 * Partial sums exact (float64 unit sums) or as 8-bit blocks (q8, as distributed-llama sends them): bytes per token
 * each way and accuracy against the exact goldens (../shared/golden/gguf). Each ring of N runs in
 * this process over real TCP tensor planes on 127.0.0.1, every member loading only its shard and
 * the leader joining the members' logits slices; accuracy is the goldens' measure (mean top-16
 * error against the exact float64 logits, argmax agreement) beside one device's and llama.cpp's.
 *
 *   npm run build && node --import tsx bench/gguf-sync.ts [--members 2,3] [--models llama3-test.q4_k_m,qwen2-test.q8_0,qwen3-test.q4_k_m]
 */
import '../src/polyfill.js'
import { parseArgs } from 'node:util'
import { llmConfig, modelTensors } from '../src/inference/gguf/architecture.js'
import { readGguf } from '../src/inference/gguf/reader.js'
import { evenRanges } from '../src/inference/job/plan.js'
import { defaultLlmEngine } from '../src/inference/llm/engine.js'
import { createLlmState, embedRows, forwardBatch, forwardRows, logitsOf, type LlmModel } from '../src/inference/llm/forward.js'
import { llmModel, loadGguf, loadGgufShard } from '../src/inference/llm/load.js'
import { llmShardForColumns, llmUnits } from '../src/inference/llm/shard-plan.js'
import { planeAllReduce } from '../src/inference/tensor-plane/all-reduce.js'
import { HEADER_BYTES, TAG_BYTES } from '../src/inference/tensor-plane/frame.js'
import { q8Words, type PartialFormat } from '../src/inference/tensor-plane/q8-partials.js'
import { goldenAccuracy, goldenCases, type GoldenCase } from '../test/helpers/gguf-golden.js'
import { sharedPath } from '../test/helpers/shared.js'
import { connectedPlanes } from '../test/helpers/tensor-planes.js'

const { values } = parseArgs({ options: { members: { type: 'string', default: '2,3' }, models: { type: 'string', default: 'llama3-test.q4_k_m,qwen2-test.q8_0,qwen3-test.q4_k_m' } } })
const BATCH = 16
const engine = defaultLlmEngine()
const modelPath = (name: string): string => sharedPath(`models/gguf/${name}.gguf`)

/** Teacher-forced logits of a case on one device. */
async function single (m: LlmModel, c: GoldenCase): Promise<Float32Array[]> {
  const s = createLlmState(m, c.token_ids.length, BATCH, BATCH)
  const rows: Float32Array[] = []
  for (let at = 0; at < c.token_ids.length; at += BATCH) {
    const chunk = c.token_ids.slice(at, at + BATCH)
    const logits = await forwardBatch(m, s, chunk, at, 0)
    for (let t = 0; t < chunk.length; t++) rows.push(logits.slice(t * m.config.vocabSize, (t + 1) * m.config.vocabSize))
  }
  return rows
}

/** Teacher-forced logits of a case on a ring of `members` planes, partials in `format`. */
async function ring (name: string, n: number, format: PartialFormat, cases: readonly GoldenCase[]): Promise<Float32Array[][]> {
  const f = await readGguf(modelPath(name))
  const c = llmConfig(f)
  const u = llmUnits(c, modelTensors(f, c))
  const ids = Array.from({ length: n }, (_, i) => `m${i}`)
  const models = await Promise.all(evenRanges(ids).map(async (r, i) =>
    llmModel(await loadGgufShard(f, 'not-checked', llmShardForColumns(c, u, r.start, r.end), i === 0 ? 'leader' : 'member', engine), engine, 1)))
  const planes = await connectedPlanes(ids, 8 * BATCH * c.dim) // float64 partials
  const out: Float32Array[][] = []
  try {
    for (const [k, gc] of cases.entries()) {
      const reduces = planes.map((plane) => planeAllReduce({ plane, job: k + 1, members: ids, nLayers: c.nLayers, partials: format, timeoutMs: 60_000 }))
      const states = models.map((m) => createLlmState(m, gc.token_ids.length, BATCH, BATCH))
      const rows: Float32Array[] = []
      for (let at = 0; at < gc.token_ids.length; at += BATCH) {
        const chunk = gc.token_ids.slice(at, at + BATCH)
        embedRows(models[0], chunk, states[0].x)
        const x = states[0].x.slice(0, chunk.length * c.dim)
        await Promise.all(models.map(async (m, i) => { states[i].x.set(x); await forwardRows(m, states[i], chunk.length, at, reduces[i].allReduce) }))
        const slices = models.map((m, i) => logitsOf(m, states[i], chunk.length, 0))
        for (let t = 0; t < chunk.length; t++) {
          const row = new Float32Array(c.vocabSize)
          let from = 0
          models.forEach((m, i) => { const v = m.weights.output.rows; row.set(slices[i].subarray(t * v, (t + 1) * v), from); from += v })
          rows.push(row)
        }
      }
      for (const r of reduces) r.close()
      out.push(rows)
    }
  } finally {
    await Promise.all(planes.map(async (p) => { await p.close() }))
  }
  return out
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
console.log(`partial sums: exact (float64) vs 8-bit blocks; ${engine} kernels, teacher-forced in chunks of ${BATCH}`)
console.log('| model | members | partials | bytes/token each way, per link | mean top-16 error | argmax = exact | one device | llama.cpp | within the single-device bound |')
console.log('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |')
for (const name of values.models.split(',')) {
  const cases = goldenCases(name)
  const whole = llmModel(await loadGguf(modelPath(name), undefined, engine), engine, 1)
  const oneDevice = await Promise.all(cases.map(async (gc) => goldenAccuracy(await single(whole, gc), gc)))
  const c = whole.config
  const positions = cases.reduce((a, gc) => a + gc.positions.length, 0)
  const llamaErr = mean(cases.map((gc) => gc.llamacpp_vs_exact.mean_max_abs_err_top16))
  const llamaAgree = cases.reduce((a, gc) => a + gc.llamacpp_vs_exact.argmax_agree, 0)
  for (const n of values.members.split(',').map(Number)) {
    for (const format of ['exact', 'q8'] as const) {
      const acc = (await ring(name, n, format, cases)).map((rows, k) => goldenAccuracy(rows, cases[k]))
      // per token, one frame per layer half (exact: float64 sums); the leader's input rows and the logits slices are float32 either way
      const bytes = 2 * c.nLayers * (HEADER_BYTES + TAG_BYTES + 4 * (format === 'q8' ? q8Words(c.dim) : 2 * c.dim))
      const within = acc.every((a, k) => a.meanErr <= 1.25 * cases[k].llamacpp_vs_exact.mean_max_abs_err_top16 + 0.01 && a.argmaxAgree >= cases[k].llamacpp_vs_exact.argmax_agree - 1)
      console.log(`| ${name} | ${n} | ${format} | ${bytes} | ${mean(acc.map((a) => a.meanErr)).toFixed(5)} | ${acc.reduce((s, a) => s + a.argmaxAgree, 0)}/${positions} | ${mean(oneDevice.map((a) => a.meanErr)).toFixed(5)}, ${oneDevice.reduce((s, a) => s + a.argmaxAgree, 0)}/${positions} | ${llamaErr.toFixed(5)}, ${llamaAgree}/${positions} | ${within ? 'yes' : 'no'} |`)
    }
  }
}
