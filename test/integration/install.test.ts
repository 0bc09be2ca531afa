import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const SCRIPT = path.resolve('scripts/install.sh')
const BINS = ['mesh', 'mesh-relay', 'mesh-control-plane']
const PATH_LINE = 'export PATH="$HOME/.local/bin:$PATH"'

// the build is the test suite's own (pretest); npm ci is what `.ci/run` exercises
async function install (home: string, env: Record<string, string> = {}): Promise<{ stdout: string, stderr: string }> {
  return await run('bash', [SCRIPT], { env: { ...process.env, HOME: home, SHELL: '/bin/bash', MESH_INSTALL_SKIP_BUILD: '1', ...env } })
}

function count (text: string, line: string): number { return text.split('\n').filter((l) => l === line).length }

describe('scripts/install.sh', () => {
  it('links the three commands into ~/.local/bin and adds it to PATH once, however often it runs', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-install-'))
    fs.writeFileSync(path.join(home, '.zshrc'), 'alias ll="ls -l"') // no final newline
    await install(home)
    const bashrc = fs.readFileSync(path.join(home, '.bashrc'), 'utf8')
    const zshrc = fs.readFileSync(path.join(home, '.zshrc'), 'utf8')
    expect(count(bashrc, PATH_LINE)).toBe(1)
    expect(zshrc.split('\n')[0]).toBe('alias ll="ls -l"')
    expect(count(zshrc, PATH_LINE)).toBe(1)

    const second = await install(home)
    expect(fs.readFileSync(path.join(home, '.bashrc'), 'utf8')).toBe(bashrc)
    expect(fs.readFileSync(path.join(home, '.zshrc'), 'utf8')).toBe(zshrc)
    expect(second.stdout).not.toMatch(/added/)
    for (const bin of BINS) {
      const link = path.join(home, '.local', 'bin', bin)
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true)
      expect(fs.existsSync(fs.realpathSync(link))).toBe(true)
    }
    const help = await run(path.join(home, '.local', 'bin', 'mesh-control-plane'), ['--help'])
    expect(help.stdout).toMatch(/^mesh-control-plane \[options\]/)
  })

  it('refuses an old Node and a file of the user\'s in the way, with one line each', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-install-'))
    const fakeBin = path.join(home, 'fake-bin')
    fs.mkdirSync(fakeBin)
    fs.writeFileSync(path.join(fakeBin, 'node'), '#!/bin/sh\necho 18.20.4\n', { mode: 0o755 })
    const old = await install(home, { PATH: `${fakeBin}:${process.env.PATH ?? ''}` }).then(() => undefined, (e: { code: number, stderr: string }) => e)
    expect(old?.code).toBe(1)
    expect(old?.stderr.trim()).toBe('install.sh: Node.js 20.19 or newer is required (found 18.20.4); upgrade it (https://nodejs.org or your package manager)')
    expect(fs.existsSync(path.join(home, '.local'))).toBe(false)

    fs.mkdirSync(path.join(home, '.local', 'bin'), { recursive: true })
    fs.writeFileSync(path.join(home, '.local', 'bin', 'mesh'), 'my own script')
    const blocked = await install(home).then(() => undefined, (e: { code: number, stderr: string }) => e)
    expect(blocked?.code).toBe(1)
    expect(blocked?.stderr.trim()).toMatch(/^install\.sh: .*\.local\/bin\/mesh exists and is not a link made by this script; move it aside and run again$/)
    expect(fs.readFileSync(path.join(home, '.local', 'bin', 'mesh'), 'utf8')).toBe('my own script')
  })
})
