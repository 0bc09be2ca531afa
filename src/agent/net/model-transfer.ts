import type { ConnectionLimits, Stream } from '@libp2p/interface'
import { byteStream } from '@libp2p/utils'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { Logger } from '../log.js'
import { ANSWER_BYTES, decodeModelAnswer, decodeModelRequest, encodeModelAnswer, encodeModelRequest, fitsConnection, REQUEST_BYTES } from './model-wire.js'

/** The checkpoint this member serves to others: its path and sha256. */
export interface ServedFile { readonly path: string, readonly sha256: string }

/** a request must arrive this fast; a transfer that sends nothing for this long is given up */
const REQUEST_TIMEOUT_MS = 5000
const STALL_TIMEOUT_MS = 30_000
/** 1 MiB reads from disk: few syscalls, and yamux's window paces the sending anyway */
const SEND_CHUNK_BYTES = 1 << 20

/**
 * Answer one /mesh/model/1.0.0 stream from an admitted member: the file if it is the checkpoint
 * we serve (and only that: never any other file), else "not served"; "too large" when the stream
 * runs on a relayed connection whose limits the file does not fit. Bad requests are dropped.
 */
export async function serveModelStream (stream: Stream, served: ServedFile | null, log: Logger, limits?: ConnectionLimits): Promise<'sent' | 'not-served' | 'too-large' | 'bad-request'> {
  const io = byteStream(stream)
  let asked: string | null
  try {
    asked = decodeModelRequest((await io.read({ bytes: REQUEST_BYTES, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).subarray())
  } catch {
    asked = null
  }
  if (asked === null) { stream.abort(new Error('bad model request')); return 'bad-request' }
  if (served === null || asked !== served.sha256) {
    await io.write(encodeModelAnswer({ kind: 'not-served' }))
    await stream.close()
    return 'not-served'
  }
  const fh = await fs.promises.open(served.path, 'r')
  try {
    const size = (await fh.stat()).size
    if (!fitsConnection(size, limits)) {
      await io.write(encodeModelAnswer({ kind: 'too-large', size }))
      await stream.close()
      log.debug({ sha256: served.sha256, bytes: size, relayAllows: String(limits?.bytes) }, 'not sending the model over a relayed connection: it would not fit the relay\'s limits')
      return 'too-large'
    }
    await io.write(encodeModelAnswer({ kind: 'file', size }))
    const buf = Buffer.alloc(SEND_CHUNK_BYTES)
    for (let at = 0; at < size;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.byteLength, size - at), at)
      if (bytesRead === 0) throw new Error(`${served.path} shrank while it was being sent`)
      // a copy: the stream may hold on to the chunk after write returns
      await io.write(Uint8Array.prototype.slice.call(buf, 0, bytesRead), { signal: AbortSignal.timeout(STALL_TIMEOUT_MS) })
      at += bytesRead
    }
    await stream.close()
    log.info({ sha256: served.sha256, bytes: size }, 'sent the model to a member')
    return 'sent'
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  } finally {
    await fh.close()
  }
}

/**
 * Why a fetch from one member failed. 'wrong-hash', 'oversized' and 'not-a-model' (its first
 * bytes are not the format announced) mean it sent other bytes than it claimed; 'no-space' is
 * this device's disk; 'unservable' a file with the right hash that is still no model to serve
 * (model-service.ts adoptFetched).
 */
export const FETCH_FAILURES = ['not-served', 'too-large', 'bad-answer', 'truncated', 'oversized', 'wrong-hash', 'not-a-model', 'no-space', 'unservable', 'stalled', 'stream-error'] as const
export type FetchFailure = typeof FETCH_FAILURES[number]

export class ModelFetchError extends Error {
  constructor (readonly reason: FetchFailure, message: string) { super(message) }
}

export interface FetchOptions {
  readonly onProgress?: ((read: number, total: number) => void) | undefined
  /**
   * Judge the file's first `bytes` (all of it if smaller) as soon as they arrive: the reason they
   * cannot be the file asked for, or null. A member streaming junk is cut off there, not after
   * the size it announced.
   */
  readonly checkHead?: { readonly bytes: number, readonly problem: (head: Uint8Array) => string | null } | undefined
}

/**
 * Fetch the file with `sha256` over an open stream into `dest`: streamed to a temporary file
 * beside it, hashed on the way, and renamed into place only when the hash matches. The disk never
 * holds more than the size the member announced (and that must fit in the free space first).
 */
export async function fetchModelOver (stream: Stream, sha256: string, dest: string, opts: FetchOptions = {}): Promise<number> {
  const io = byteStream(stream)
  const tmp = `${dest}.part-${process.pid}`
  let fd: number | undefined
  let stall: NodeJS.Timeout | undefined
  let stalled = false
  const armStall = (): void => {
    clearTimeout(stall)
    stall = setTimeout(() => { stalled = true; stream.abort(new Error('model transfer stalled')) }, STALL_TIMEOUT_MS)
  }
  try {
    armStall()
    await io.write(encodeModelRequest(sha256))
    const answer = decodeModelAnswer((await io.read({ bytes: ANSWER_BYTES })).subarray())
    if (answer === null) throw new ModelFetchError('bad-answer', 'the member answered with a malformed header')
    if (answer.kind === 'not-served') throw new ModelFetchError('not-served', 'the member does not serve that checkpoint')
    if (answer.kind === 'too-large') throw new ModelFetchError('too-large', `the checkpoint (${answer.size} bytes) is too large for the relayed connection to that member; it is fetched once a direct connection exists`)
    fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 })
    const free = freeBytes(path.dirname(dest))
    if (answer.size > free) throw new ModelFetchError('no-space', `the model is ${answer.size} bytes and ${path.dirname(dest)} has ${free} free; free some space and the fetch is tried again`)
    fd = fs.openSync(tmp, 'w', 0o600)
    const hash = createHash('sha256')
    const head = new HeadCheck(opts.checkHead, answer.size)
    let got = 0
    for (;;) {
      const chunk = await io.read()
      if (chunk === null) break
      armStall()
      got += chunk.byteLength
      if (got > answer.size) throw new ModelFetchError('oversized', `the member sent more than the ${answer.size} bytes it announced`)
      for (const part of chunk) {
        head.add(part)
        hash.update(part)
        fs.writeSync(fd, part)
      }
      opts.onProgress?.(got, answer.size)
    }
    if (got < answer.size) throw new ModelFetchError('truncated', `the transfer ended after ${got} of ${answer.size} bytes`)
    const actual = hash.digest('hex')
    if (actual !== sha256) throw new ModelFetchError('wrong-hash', `the member sent a file with sha256 ${actual}, not ${sha256}`)
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    fd = undefined
    fs.renameSync(tmp, dest)
    return got
  } catch (err) {
    if (err instanceof ModelFetchError) { stream.abort(err); throw err }
    if (stalled) throw new ModelFetchError('stalled', `nothing arrived for ${STALL_TIMEOUT_MS / 1000} s`)
    throw new ModelFetchError('stream-error', err instanceof Error ? err.message : String(err))
  } finally {
    clearTimeout(stall)
    if (fd !== undefined) fs.closeSync(fd)
    fs.rmSync(tmp, { force: true })
  }
}

/** Collects the file's first bytes and judges them once, throwing 'not-a-model' when they fail. */
class HeadCheck {
  private readonly parts: Uint8Array[] = []
  private have = 0
  private readonly need: number
  constructor (private readonly check: FetchOptions['checkHead'], size: number) {
    this.need = check === undefined ? 0 : Math.min(check.bytes, size)
  }

  add (part: Uint8Array): void {
    if (this.check === undefined || this.have >= this.need) return
    this.parts.push(part.subarray(0, this.need - this.have))
    this.have += Math.min(part.byteLength, this.need - this.have)
    if (this.have < this.need) return
    const problem = this.check.problem(Buffer.concat(this.parts))
    if (problem !== null) throw new ModelFetchError('not-a-model', `the member sent a file that is not the model it announced: ${problem}`)
  }
}

/** Bytes an unprivileged writer may still use on the file system holding `dir`. */
function freeBytes (dir: string): number {
  const s = fs.statfsSync(dir)
  return s.bavail * s.bsize
}
