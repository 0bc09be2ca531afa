import type { Argv } from 'yargs'
import { DoctorFoundProblemsError } from '../ops/errors.js'
import { CHECKS } from '../ops/doctor/checks.js'
import { doctorContext } from '../ops/doctor/context.js'
import { exitCode, runChecks, type DoctorReport } from '../ops/doctor/run.js'
import type { MeshCommand } from './commands.js'
import type { GlobalArgs } from '../process/io.js'

interface DoctorArgs extends GlobalArgs { strict: boolean }

/** The table: status, check, detail; under each check that is not ok, what to do. */
export function formatReport (r: DoctorReport): string {
  const width = Math.max(...r.checks.map((c) => c.id.length))
  const rows = r.checks.flatMap((c) => [
    `${c.status.padEnd(4)}  ${c.id.padEnd(width)}  ${c.detail}`,
    ...(c.status !== 'ok' && c.fix !== '' ? [`${''.padEnd(6 + width)}  fix: ${c.fix}`] : [])
  ])
  return rows.join('\n')
}

function summary (r: DoctorReport): string {
  const n = (s: string): number => r.checks.filter((c) => c.status === s).length
  const part = (k: number, one: string, many: string): string => `${k} ${k === 1 ? one : many}`
  return `${part(n('fail'), 'check failed', 'checks failed')}, ${part(n('warn'), 'warning', 'warnings')}: ${r.checks.filter((c) => c.status === 'fail' || c.status === 'warn').map((c) => c.id).join(', ')}; each has its fix above (mesh doctor --json for all)`
}

export const doctorCommand: MeshCommand = (io) => ({
  command: 'doctor',
  describe: 'check this device: identity, config, certificates, agent, beacons, peers, ring, model, relay, control plane, API, clock, service; each ok/warn/fail/skip with a fix',
  builder: (y: Argv<GlobalArgs>) => y
    .option('strict', { type: 'boolean', default: false, describe: 'exit 1 on warnings too, not only on failures' }),
  handler: async (argv) => {
    const a = argv as unknown as DoctorArgs
    const report = await runChecks(CHECKS, doctorContext(a.home))
    io.out(a.json ? JSON.stringify(report) : formatReport(report))
    if (exitCode(report, a.strict) !== 0) throw new DoctorFoundProblemsError(summary(report))
  }
})
