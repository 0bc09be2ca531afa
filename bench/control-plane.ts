/**
 * mesh-control-plane latencies over real HTTP on 127.0.0.1 against the built server (child process,
 * temporary MESH_HOME, SQLite synchronous=FULL): a signed read, a signed write (heartbeat), and a
 * job streamed token by token from an agent to the submitter. Prints medians and p90 with the machine.
 *
 *   npm run build && node --import tsx bench/control-plane.ts [requests=200] [tokens=32] [jobs=5]
 */
import '../src/polyfill.js'
import os from 'node:os'
import { clientFor, startControlPlane } from '../test/helpers/control-plane.js'
import { makeMember, makePool, tempHome } from '../test/helpers/members.js'

const [requests = 200, tokens = 32, jobs = 5] = process.argv.slice(2).map(Number)

function stats (ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b)
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN
  return `median ${at(0.5).toFixed(2)} ms, p90 ${at(0.9).toFixed(2)} ms (n=${s.length})`
}

async function timed (fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  await fn()
  return performance.now() - t0
}

const cp = await startControlPlane(tempHome(), ['--port', '0'])
try {
  const pool = makePool()
  const sub = clientFor(cp.url, makeMember(pool, 'submitter'))
  const agent = clientFor(cp.url, makeMember(pool, 'agent'))
  await sub.register(pool.rootPublicKey)
  await agent.register(pool.rootPublicKey)
  await agent.joinRing()
  for (let i = 0; i < 20; i++) await agent.ring() // warm-up

  const reads: number[] = []
  const writes: number[] = []
  for (let i = 0; i < requests; i++) reads.push(await timed(async () => await sub.ring()))
  for (let i = 0; i < requests; i++) writes.push(await timed(async () => await agent.heartbeat()))

  const tokenPosts: number[] = []
  const tokenSeen: number[] = []
  const roundTrips: number[] = []
  for (let j = 0; j < jobs; j++) {
    const t0 = performance.now()
    const claiming = agent.claimJob(10_000)
    const job = await sub.submitJob({ prompt: 'Once upon a time', maxTokens: tokens })
    await claiming
    const sentAt: number[] = []
    // the submitter long-polls while the agent posts one token at a time
    const watching = (async () => {
      let from = 0
      while (from < tokens) {
        const v = await sub.job(job.jobId, { from, waitMs: 5000 })
        const now = performance.now()
        for (let k = 0; k < v.tokens.length; k++) tokenSeen.push(now - (sentAt[from + k] ?? now))
        from = v.next
      }
    })()
    for (let k = 0; k < tokens; k++) {
      sentAt[k] = performance.now()
      tokenPosts.push(await timed(async () => await agent.postTokens(job.jobId, k, [` t${k}`])))
    }
    await watching
    await agent.finishJob(job.jobId, { result: { text: 'x', tokens } })
    roundTrips.push(performance.now() - t0)
  }

  console.log(`mesh-control-plane on 127.0.0.1 — ${os.cpus().length}× ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
  console.log(`signed read  (GET ring):        ${stats(reads)}`)
  console.log(`signed write (POST heartbeat):  ${stats(writes)}`)
  console.log(`token post (agent → server):    ${stats(tokenPosts)}`)
  console.log(`token seen by submitter:        ${stats(tokenSeen)}  (post start → long poll returns)`)
  console.log(`job of ${tokens} tokens end to end: ${stats(roundTrips)}  (submit, claim, stream, finish)`)
} finally {
  await cp.stop()
}
