import { describe, expect, it } from 'vitest'
import { runCli } from '../../src/cli/run.js'
import type { CliIO } from '../../src/cli/io.js'

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
