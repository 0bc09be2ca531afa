import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { CorruptFileError, StateWriteError, readJsonFile, writeJsonAtomic } from '../../src/atomic-file.js'

const dirs: string[] = []
function tmpdir (): string { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-af-')); dirs.push(d); return d }
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }) })

describe('atomic JSON files', () => {
  it('round-trips and leaves no temp files', () => {
    const d = tmpdir(); const f = path.join(d, 'sub', 'a.json')
    writeJsonAtomic(f, { a: 1 }, 0o600)
    expect(readJsonFile(f)).toEqual({ a: 1 })
    expect(fs.statSync(f).mode & 0o777).toBe(0o600)
    expect(fs.readdirSync(path.dirname(f))).toEqual(['a.json'])
  })
  it('returns undefined for a missing file and names a corrupt one', () => {
    const d = tmpdir(); const f = path.join(d, 'c.json')
    expect(readJsonFile(f)).toBeUndefined()
    fs.writeFileSync(f, '{"a": ')
    expect(() => readJsonFile(f)).toThrow(CorruptFileError)
    expect(() => readJsonFile(f)).toThrow(f)
  })
  // root writes anywhere; the CLI tests cover an unwritable MESH_HOME by putting it under a file
  it.skipIf(process.getuid?.() === 0)('reports an unwritable directory and keeps the old content', () => {
    const d = tmpdir(); const f = path.join(d, 'k.json')
    writeJsonAtomic(f, { keep: true })
    fs.chmodSync(d, 0o500)
    expect(() => writeJsonAtomic(f, { keep: false })).toThrow(StateWriteError)
    fs.chmodSync(d, 0o700)
    expect(readJsonFile(f)).toEqual({ keep: true })
  })
})
