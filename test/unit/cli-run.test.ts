import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { commands } from '../../src/cli/commands.js'
import { runCli } from '../../src/cli/run.js'
import type { CliIO } from '../../src/process/io.js'
import { inProcess, meshOk } from '../helpers/mesh-cli.js'

function capture (): CliIO & { stdout: string[], stderr: string[] } {
  const stdout: string[] = []; const stderr: string[] = []
  return { stdout, stderr, out: (t) => stdout.push(t), err: (t) => stderr.push(t), isTTY: false }
}

describe('runCli', () => {
  it('asks for a command when none is given, on one line, exit 2', async () => {
    const io = capture()
    expect(await runCli([], io)).toBe(2)
    expect(io.stderr).toEqual(['mesh: say which command to run (see mesh --help)'])
    expect(io.stdout).toEqual([])
  })
})

describe('mesh --help', () => {
  it('lists every command, and each command its flags (inference loads its engine list when it runs)', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-help-'))
    const names = commands.map((c) => String(c(capture()).command).split(' ')[0])
    expect(names).toHaveLength(21)
    const top = await meshOk(inProcess, home, ['--help'])
    for (const name of names) expect(top).toMatch(new RegExp(`^ +mesh ${name}\\b`, 'm'))
    expect(await meshOk(inProcess, home, ['inference', '--help'])).toMatch(/--engine[\s\S]*choices: "auto", "ts", "wasm", "native", "onnx"/)
    expect(await meshOk(inProcess, home, ['pool-join', '--help'])).toMatch(/--start[\s\S]*--wait/)
    expect(await meshOk(inProcess, home, ['start', '--help'])).toMatch(/--foreground/)
  })
})
