import { createHash } from 'node:crypto'
import { open, stat, type FileHandle } from 'node:fs/promises'
import { ModelFileError } from './errors.js'
import { onHugePages } from './native.js'

/** Called while a file loads: bytes read so far and the total. */
export type LoadProgress = (readBytes: number, totalBytes: number) => void

/** Gives the buffer a file is read into, so a kernel can own the memory (e.g. a wasm heap). */
export type Allocate = (bytes: number) => Uint8Array

/** Plain memory (on huge pages where it can be); a fresh ArrayBuffer starts at offset 0, so float32 views are always aligned. */
export const allocateHeap: Allocate = (bytes) => onHugePages(new Uint8Array(new ArrayBuffer(bytes)))

/** Size of a regular file, or a one-line error saying why it cannot be used. */
export async function regularFileSize (path: string, what: string): Promise<number> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new ModelFileError(err.code === 'ENOENT' ? `${what} ${path} does not exist` : `cannot read ${what} ${path}: ${err.code ?? err.message}`)
  })
  if (info.isDirectory()) throw new ModelFileError(`${what} ${path} is a directory, not a file`)
  if (!info.isFile()) throw new ModelFileError(`${what} ${path} is not a regular file`)
  return info.size
}

/** The first `n` bytes of a file (fewer if the file is shorter). */
export async function readHead (path: string, n: number): Promise<Uint8Array> {
  const fh = await open(path, 'r')
  try {
    const buf = new Uint8Array(n)
    const { bytesRead } = await fh.read(buf, 0, n, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/** 16 MiB: large enough that syscalls are negligible, small enough for a smooth progress bar. */
const CHUNK_BYTES = 16 << 20

/** Read a whole file into one buffer from `allocate`, hashing it on the way (sha256, hex). */
export async function readWholeFile (path: string, size: number, allocate: Allocate, onProgress?: LoadProgress): Promise<{ bytes: Uint8Array, sha256: string }> {
  const bytes = allocate(size)
  const hash = createHash('sha256')
  const fh = await open(path, 'r')
  try {
    const readAt = fileReadAt(fh, path)
    for (let at = 0; at < size; at += CHUNK_BYTES) {
      const chunk = bytes.subarray(at, Math.min(size, at + CHUNK_BYTES))
      await readAt(chunk, at)
      hash.update(chunk)
      onProgress?.(at + chunk.byteLength, size)
    }
  } finally {
    await fh.close()
  }
  return { bytes, sha256: hash.digest('hex') }
}

/** Positioned reads that fill the whole target or fail naming the file. */
export function fileReadAt (fh: FileHandle, path: string): (into: Uint8Array, position: number) => Promise<void> {
  return async (into, position) => {
    let got = 0
    while (got < into.byteLength) {
      const { bytesRead } = await fh.read(into, got, into.byteLength - got, position + got)
      if (bytesRead === 0) throw new ModelFileError(`${path} shrank while it was being read`)
      got += bytesRead
    }
  }
}

/** sha256 (hex) of a file, streamed through a small buffer: memory stays flat for any size. */
export async function hashFile (path: string, onProgress?: LoadProgress): Promise<string> {
  const size = await regularFileSize(path, 'file')
  const hash = createHash('sha256')
  const buf = new Uint8Array(Math.min(CHUNK_BYTES, 1 << 20))
  const fh = await open(path, 'r')
  try {
    for (let at = 0; ;) {
      const { bytesRead } = await fh.read(buf, 0, buf.byteLength, at)
      if (bytesRead === 0) break
      hash.update(buf.subarray(0, bytesRead))
      at += bytesRead
      onProgress?.(at, size)
    }
  } finally {
    await fh.close()
  }
  return hash.digest('hex')
}
