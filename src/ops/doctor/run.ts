/**
 * Running doctor's checks: each under its own deadline (a check that hangs is a fail, never a
 * hung doctor), each after the checks it needs, which must have passed (ok or warn) or it is
 * skipped with the reason. Checks run concurrently, so the doctor takes about as long as its
 * longest chain of checks, not their sum.
 */

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip'

/** What a check found: one line of detail, and one line saying what to do (empty when nothing). */
export interface Outcome { readonly status: CheckStatus, readonly detail: string, readonly fix: string }

export interface CheckResult extends Outcome { readonly id: string, readonly ms: number }

/** One check as plain data: checks.ts lists them in the order doctor shows them. */
export interface Check<C> {
  readonly id: string
  /** what a user reads in the table */
  readonly title: string
  /** longest the check may take; beyond it the check is a fail */
  readonly deadlineMs: number
  /** ids of checks that must pass first (ok or warn) */
  readonly needs?: readonly string[]
  readonly run: (ctx: C) => Promise<Outcome>
}

export interface DoctorReport { readonly checks: CheckResult[], readonly status: 'ok' | 'warn' | 'fail' }

export const ok = (detail: string): Outcome => ({ status: 'ok', detail, fix: '' })
export const warn = (detail: string, fix: string): Outcome => ({ status: 'warn', detail, fix })
export const fail = (detail: string, fix: string): Outcome => ({ status: 'fail', detail, fix })
export const skip = (detail: string, fix = ''): Outcome => ({ status: 'skip', detail, fix })

/** The check's promise or a fail at its deadline; a check that throws is a fail with the error's message. */
async function withDeadline (run: () => Promise<Outcome>, ms: number): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => { resolve(fail(`did not finish within ${ms} ms`, 'something it waits on hangs: run mesh doctor again, then look at the agent log')) }, ms)
  })
  try {
    return await Promise.race([run().catch((err: unknown) => fail(oneLine(err instanceof Error ? err.message : String(err)), 'see the message; mesh doctor --json has every check')), late])
  } finally {
    clearTimeout(timer)
  }
}

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim()

export async function runChecks<C> (checks: ReadonlyArray<Check<C>>, ctx: C): Promise<DoctorReport> {
  const results = new Map<string, Promise<CheckResult>>()
  for (const check of checks) {
    const needs = (check.needs ?? []).map((id) => {
      const r = results.get(id)
      // a need on a later or unknown check is a bug in checks.ts, not in the system being checked
      if (r === undefined) throw new Error(`check ${check.id} needs ${id}, which is not listed before it`)
      return r
    })
    results.set(check.id, (async () => {
      const before = await Promise.all(needs)
      const unmet = before.find((r) => r.status === 'fail' || r.status === 'skip')
      if (unmet !== undefined) return { id: check.id, ...skip(`needs ${unmet.id}: ${unmet.status === 'skip' ? 'skipped' : 'failed'}`), ms: 0 }
      const start = performance.now()
      const outcome = await withDeadline(async () => await check.run(ctx), check.deadlineMs)
      return { id: check.id, status: outcome.status, detail: oneLine(outcome.detail), fix: oneLine(outcome.fix), ms: Math.round(performance.now() - start) }
    })())
  }
  const all = await Promise.all(results.values())
  const status = all.some((r) => r.status === 'fail') ? 'fail' : all.some((r) => r.status === 'warn') ? 'warn' : 'ok'
  return { checks: all, status }
}

/** 0 when nothing failed; 1 otherwise, and with --strict also when something warned. */
export function exitCode (report: DoctorReport, strict: boolean): number {
  return report.status === 'fail' || (strict && report.status === 'warn') ? 1 : 0
}
