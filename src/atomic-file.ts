import fs from 'node:fs'
import path from 'node:path'
import { MeshError } from './errors.js'

/** A state file exists but cannot be used: unreadable, truncated, not JSON, or hand-edited badly. */
export class CorruptFileError extends MeshError {
  constructor (readonly file: string, problem: string) {
    super(`${file} is corrupt (${problem}); restore it from a backup or remove it and set it up again`)
  }
}

/** A state directory or file cannot be written. */
export class StateWriteError extends MeshError {
  constructor (readonly file: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException)?.code ?? 'unknown error'
    super(`cannot write ${file} (${code}); check that MESH_HOME is writable`, { cause })
  }
}

/**
 * Write a file so that readers see either the old or the new content, never a mix:
 * write a temp file beside it, fsync, rename over the target, fsync the directory.
 */
export function writeFileAtomic (file: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = path.dirname(file)
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`)
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    const fd = fs.openSync(tmp, 'w', mode)
    try {
      fs.writeFileSync(fd, data)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.chmodSync(tmp, mode) // the umask may have narrowed or the file may have existed
    fs.renameSync(tmp, file)
    const dirFd = fs.openSync(dir, 'r')
    try { fs.fsyncSync(dirFd) } finally { fs.closeSync(dirFd) }
  } catch (err) {
    // best effort: under a path that is not a directory even the clean-up fails (ENOTDIR)
    try { fs.rmSync(tmp, { force: true }) } catch { /* nothing was written */ }
    throw new StateWriteError(file, err)
  }
}

/** JSON.stringify with a trailing newline, written atomically. */
export function writeJsonAtomic (file: string, value: unknown, mode = 0o644): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n', mode)
}

/**
 * Read and parse a JSON state file. Returns undefined when it does not exist;
 * throws CorruptFileError (naming the file) when it exists but is not valid JSON.
 * Callers validate the shape (e.g. with zod) and report problems with CorruptFileError too.
 */
export function readJsonFile (file: string): unknown {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    if (code === 'EISDIR') throw new CorruptFileError(file, 'it is a directory')
    throw new CorruptFileError(file, `cannot read it: ${code ?? String(err)}`)
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new CorruptFileError(file, text.trim() === '' ? 'it is empty' : 'it is not valid JSON')
  }
}
