import { execFile } from 'node:child_process'
import path from 'node:path'
import { expect } from 'vitest'
import { runCli } from '../../src/cli/run.js'
import { snapshot } from './pool-fixtures.js'

const MESH = path.resolve('dist/cli/mesh.js')

export interface Run { code: number, stdout: string, stderr: string }
/** Runs `mesh args` against MESH_HOME `home`. */
export type Runner = (home: string, args: string[], env?: Record<string, string>) => Promise<Run>

/** The built `mesh` as a child process with MESH_HOME=home and no mesh variables inherited. */
export const child: Runner = async (home, args, env = {}) => {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['MESH_HOME', 'NETWORK_ID', 'DEVICE_NAME', 'POOL_NAME'].includes(k)))
  return await new Promise((resolve) => {
    execFile(process.execPath, [MESH, ...args], { env: { ...base, MESH_HOME: home, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

/**
 * runCli in this process with captured streams (yargs prints --help with console.log): the same code
 * as the executable minus its three-line entry point, for the long tables of bad input.
 */
export const inProcess: Runner = async (home, args) => {
  const stdout: string[] = []; const stderr: string[] = []
  const log = console.log
  console.log = (...a: unknown[]) => { stdout.push(a.join(' ') + '\n') }
  try {
    const code = await runCli([...args, '--home', home], {
      out: t => stdout.push(t.endsWith('\n') ? t : t + '\n'),
      err: t => stderr.push(t.endsWith('\n') ? t : t + '\n'),
      isTTY: false
    })
    return { code, stdout: stdout.join(''), stderr: stderr.join('') }
  } finally {
    console.log = log
  }
}

/** Must succeed; returns stdout. */
export async function meshOk (run: Runner, home: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await run(home, args, env)
  expect(r, `mesh ${args.join(' ')}`).toMatchObject({ code: 0 })
  return r.stdout
}

/**
 * Must fail with one line on stderr matching `message`, a non-zero exit, empty stdout, no stack trace,
 * and nothing under `home` changed.
 */
export async function meshFails (run: Runner, home: string, args: string[], message: RegExp, env: Record<string, string> = {}): Promise<Run> {
  const before = snapshot(home)
  const r = await run(home, args, env)
  expect(r.code, `exit code of mesh ${args.join(' ')}: ${r.stderr}`).not.toBe(0)
  expect(r.stdout).toBe('')
  const lines = r.stderr.trimEnd().split('\n')
  expect(lines, 'one line on stderr').toHaveLength(1)
  expect(lines[0]).toMatch(/^mesh: /)
  expect(lines[0]).toMatch(message)
  expect(lines[0]).not.toMatch(/internal error|\bat .*\.js:\d+/)
  expect(snapshot(home), `files under MESH_HOME after mesh ${args.join(' ')}`).toEqual(before)
  return r
}
