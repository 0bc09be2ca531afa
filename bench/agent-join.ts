/**
 * LAN join time in network namespaces (root only): admin pool-create + start; member init +
 * pool-join (token) + start; time until the member holds its certificate and both agents list each
 * other ONLINE. Two figures per run: from invoking `mesh start` on the member (what a user waits,
 * process start-up included) and from `mesh start` returning (agent up) to joined. Prints medians.
 *
 *   npm run build && node --import tsx bench/agent-join.ts [runs=5]
 */
import os from 'node:os'
import { createAdmin, joined, joinMember, until } from '../test/e2e/lan-join.js'
import { NetnsLab, netnsUnavailable } from '../test/e2e/netns.js'

const runs = Number(process.argv[2] ?? 5)
const why = netnsUnavailable()
if (why !== undefined) {
  console.error(`agent-join bench skipped: ${why}`)
  process.exit(0)
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] as number }
const fromStart: number[] = []
const fromUp: number[] = []
for (let i = 0; i < runs; i++) {
  const lab = NetnsLab.create(2)
  try {
    const [admin, member] = [lab.node(0), lab.node(1)]
    const pool = await createAdmin(lab, admin)
    await joinMember(lab, member, pool, pool.joinToken)
    const t0 = performance.now()
    await lab.meshOk(member, ['start'])
    const up = performance.now()
    await until(async () => await joined(admin, member, pool.poolId), 30_000, 'join')
    const done = performance.now()
    fromStart.push(done - t0); fromUp.push(done - up)
    console.error(`run ${i + 1}: ${Math.round(done - t0)} ms from \`mesh start\`, ${Math.round(done - up)} ms after it returned`)
  } finally {
    lab.destroy()
  }
}
console.log(`agent-join, ${runs} runs, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load ${os.loadavg()[0]?.toFixed(1)}: ` +
  `median ${Math.round(median(fromStart))} ms from \`mesh start\` to certificate + both ONLINE; ` +
  `median ${Math.round(median(fromUp))} ms from agent up`)
