/**
 * Distributed inference on stories260K: tokens/s and time to first token of `mesh inference`
 * through the agent with a ring of 1 and of 2 agents on this machine (127.0.0.1), beside
 * `mesh inference --local`; each the median of several runs, greedy, 256 steps.
 *
 *   npm run build && node --import tsx bench/inference-ring.ts [--runs 5]
 *
 * The pools are made with the test helpers (certificates issued directly, no LAN join), so the
 * figures cover the job itself: job set-up, tensor-plane all-reduces, sampling, streaming.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import { parseArgs, promisify } from 'node:util'
import { callAgent } from '../src/agent/api/client.js'
import type { RingReport } from '../src/agent/net/pool-ring.js'
import { killAgents, mesh, MESH_JS, startAgents } from '../test/helpers/agent-procs.js'
import { tempRoot, testPool } from '../test/helpers/pools.js'

const run = promisify(execFile)
const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } })
const RUNS = Number(values.runs)
const ARGS = ['inference', '--prompt', 'Once upon a time', '--max-tokens', '252', '--temperature', '0', '--json']
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

interface Job { tokens_per_second: number, time_to_first_token_ms: number, members?: Array<{ compute_ms: number, network_ms: number, leader: boolean }> }

async function infer (home: string, extra: string[] = []): Promise<Job> {
  const { stdout } = await run(process.execPath, [MESH_JS, ...ARGS, ...extra], { env: { ...process.env, MESH_HOME: home } })
  return JSON.parse(stdout) as Job
}

function report (what: string, jobs: Job[]): void {
  const leader = jobs.map((j) => j.members?.find((m) => m.leader))
  const perMember = leader[0] === undefined ? '' : `, leader compute ${median(leader.map((m) => m!.compute_ms)).toFixed(0)} ms, network ${median(leader.map((m) => m!.network_ms)).toFixed(0)} ms`
  console.log(`${what.padEnd(22)} tok/s p50 ${median(jobs.map((j) => j.tokens_per_second)).toFixed(1).padStart(7)}  (min ${Math.min(...jobs.map((j) => j.tokens_per_second)).toFixed(1)}, max ${Math.max(...jobs.map((j) => j.tokens_per_second)).toFixed(1)})  ttft p50 ${median(jobs.map((j) => j.time_to_first_token_ms)).toFixed(1)} ms${perMember}`)
}

async function ring (n: number): Promise<void> {
  const root = tempRoot()
  const p = testPool(root, Array.from({ length: n }, (_, i) => `m${i}`))
  const homes = [p.admin.home, ...p.members.map((m) => m.home)]
  const started: string[] = []
  try {
    await startAgents(homes, started)
    for (const deadline = Date.now() + 60_000; ;) {
      const rings = await Promise.all(homes.map(async (h) => (await callAgent<RingReport[]>(h, 'GET', '/v1/ring'))[0]))
      if (rings.every((r) => r?.converged === true && r.topology.members.length === n)) break
      if (Date.now() > deadline) throw new Error('ring did not converge')
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    await infer(homes[0]) // warm-up: the members load the model on their first job
    const jobs: Job[] = []
    for (let i = 0; i < RUNS; i++) jobs.push(await infer(homes[0]))
    report(`ring of ${n} agent${n === 1 ? '' : 's'}`, jobs)
  } finally {
    for (const h of started) await mesh(h, ['stop'])
    killAgents(started)
    fs.rmSync(root, { recursive: true, force: true })
  }
}

console.log(`stories260K, 256 greedy steps, ${RUNS} runs each; ${os.cpus()[0]?.model ?? '?'}, ${os.availableParallelism()} cores, Node ${process.version}, load average ${os.loadavg()[0].toFixed(1)}`)
const local: Job[] = []
for (let i = 0; i < RUNS; i++) local.push(await infer(os.tmpdir(), ['--local']))
report('--local (no agent)', local)
await ring(1)
await ring(2)
