import { expect } from 'vitest'
import { readPid } from '../../src/agent/pidfile.js'

export interface Outcome { code: number, stdout: string, stderr: string }

/**
 * The failover check: run a streamed greedy `mesh inference` on a ring of three, kill -9
 * one member's agent once 200 characters of text are out, and expect the job to finish on the two
 * left with the uninterrupted (golden) text, after a one-line notice.
 */
export async function expectFailoverToGolden (infer: (onStdout: (soFar: string) => void) => Promise<Outcome>, victimHome: string, goldenStdout: string): Promise<void> {
  let killed = false
  const r = await infer((soFar) => {
    if (killed || soFar.length < 200) return
    killed = true
    process.kill(readPid(victimHome)!, 'SIGKILL')
  })
  expect(killed).toBe(true)
  expect(r.code, r.stderr).toBe(0)
  expect(r.stdout).toBe(goldenStdout)
  expect(r.stderr).toMatch(/^mesh: notice: a member was lost at position \d+ .*re-planning on the next ring epoch$/m)
  expect(r.stderr).toMatch(/, 2 members, 1 failover\n/)
}
