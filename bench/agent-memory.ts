/**
 * Memory of real agents serving a model, as a ring of N shrinks by one: N agents on 127.0.0.1
 * (unicast beacons, real libp2p and tensor plane) start with `--model`; per agent, RSS and peak
 * RSS (VmRSS, VmHWM of /proc) when the ring is idle, after a greedy job on N members, and after
 * kill -9 of the last member and a job on the N-1 left (the shards are planned again: each agent
 * loads its new shard and frees the old one). Never asserted anywhere.
 *
 *   npm run build && node --import tsx bench/agent-memory.ts [--shape stories110M] [--members 3] [--tokens 16]
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { callAgent } from '../src/agent/api/client.js'
import type { RingReport } from '../src/agent/net/pool-ring.js'
import { readPid } from '../src/agent/pidfile.js'
import { killAgents, logOf, MESH_JS, startAgents } from '../test/helpers/agent-procs.js'
import { tempRoot, testPool } from '../test/helpers/pools.js'

const arg = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : fallback }
const shape = arg('shape', 'stories110M')
const n = Number(arg('members', '3'))
const tokens = arg('tokens', '16')
const model = path.join(os.tmpdir(), `mesh-bench-${shape}.bin`) // the file bench/shard-members.ts makes too
const tokenizer = 'test/fixtures/llama2-tokenizer/tokenizer.bin'

/** VmRSS and VmHWM of an agent, MiB. */
function memory (home: string): { rss: number, peak: number } {
  const status = fs.readFileSync(`/proc/${readPid(home)}/status`, 'utf8')
  const kb = (key: string): number => Number(/(\d+) kB/.exec(status.split('\n').find((l) => l.startsWith(key)) ?? '')?.[1] ?? NaN)
  return { rss: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) }
}

async function ringOf (homes: string[]): Promise<void> {
  const deadline = Date.now() + 120_000
  for (;;) {
    const reports = await Promise.all(homes.map(async (h) => (await callAgent<RingReport[]>(h, 'GET', '/v1/ring'))[0]))
    if (reports.every((r) => r?.converged === true && r.topology.members.length === homes.length)) return
    if (Date.now() > deadline) throw new Error(`no ring of ${homes.length} within 2 minutes`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

async function job (home: string): Promise<string> {
  // no test helper's 30 s limit: several agents on a small machine can be slow
  const { stdout } = await promisify(execFile)(process.execPath, [MESH_JS, 'inference', '--prompt', 'Once upon a time', '--max-tokens', tokens, '--temperature', '0', '--json'],
    { env: { ...process.env, MESH_HOME: home }, timeout: 600_000 })
  const j = JSON.parse(stdout) as { members: unknown[], tokens_per_second: number | null }
  return `${j.members.length} members, ${j.tokens_per_second?.toFixed(1) ?? 'n/a'} tok/s`
}

if (!fs.existsSync(model)) await promisify(execFile)(process.execPath, [MESH_JS, 'model', 'synth', '--shape', shape, '--out', model])
const root = tempRoot()
const homes = (() => { const p = testPool(root, Array.from({ length: n }, (_, i) => i === 0 ? 'admin' : `m${i}`)); return [p.admin, ...p.members].map((d) => d.home) })()
const started: string[] = []
try {
  // the agents share this machine's cores: one kernel thread each (see bench/README.md)
  await startAgents(homes, started, ['--model', model, '--tokenizer', tokenizer, '--threads', '1'])
  await ringOf(homes)
  const rows: Array<[string, Array<{ rss: number, peak: number }>]> = [['idle', homes.map(memory)]]
  const first = await job(homes[0])
  rows.push([`after a job (${first})`, homes.map(memory)])
  process.kill(readPid(homes[n - 1])!, 'SIGKILL')
  const left = homes.slice(0, n - 1)
  await ringOf(left)
  const second = await job(homes[0])
  rows.push([`kill -9 of the last, then a job (${second})`, left.map(memory)])
  console.log(`${shape} served by ${n} agents on 127.0.0.1 (${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}); agent 0 leads; RSS / peak RSS MiB`)
  console.log(`| ring | ${homes.map((_, i) => `agent ${i}`).join(' | ')} |`)
  console.log(`| --- | ${homes.map(() => '---:').join(' | ')} |`)
  for (const [what, mem] of rows) console.log(`| ${what} | ${homes.map((_, i) => mem[i] === undefined ? '' : `${mem[i].rss} / ${mem[i].peak}`).join(' | ')} |`)
} catch (err) {
  console.error(homes.map(logOf).join('\n').slice(-5000))
  console.error(String(err))
  process.exitCode = 1
} finally {
  killAgents(started)
  fs.rmSync(root, { recursive: true, force: true })
}
