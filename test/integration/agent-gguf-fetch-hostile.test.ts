import type { Stream } from '@libp2p/interface'
import { byteStream, streamPair } from '@libp2p/utils'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { headProblem, MODEL_HEAD_BYTES } from '../../src/agent/model-files.js'
import { adoptFetched } from '../../src/agent/model-service.js'
import { fetchModelOver, ModelFetchError } from '../../src/agent/net/model-transfer.js'
import { decodeModelRequest, encodeModelAnswer, REQUEST_BYTES } from '../../src/agent/net/model-wire.js'
import { modelIdentity } from '../../src/inference/identity.js'
import { BUNDLED_MODEL } from '../../src/inference/served.js'
import { tempDirs } from '../helpers/pool-fixtures.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'

/*
 * A member fetching a GGUF file over /mesh/model/1.0.0 from a hostile one: the real fetcher over a
 * yamux stream pair, the other end a member that announces one size and sends what it likes. Every
 * case is dropped with its typed reason, and nothing is left on disk.
 */
const tempDir = tempDirs('mesh-gguf-fetch-')
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** A member that answers any request with `size` and then streams `body` (in 64 KiB writes, counted). */
async function hostileServer (stream: Stream, size: number, body: Uint8Array): Promise<{ sent: number }> {
  const io = byteStream(stream)
  const sent = { sent: 0 }
  expect(decodeModelRequest((await io.read({ bytes: REQUEST_BYTES })).subarray())).not.toBeNull()
  await io.write(encodeModelAnswer({ kind: 'file', size }))
  try {
    for (let at = 0; at < body.byteLength; at += 1 << 16) {
      await io.write(body.slice(at, at + (1 << 16)))
      sent.sent = Math.min(body.byteLength, at + (1 << 16))
    }
    await stream.close()
  } catch { /* the fetcher hung up on us: that is the point */ }
  return sent
}

interface Attempt { error: ModelFetchError | null, sent: number, left: string[] }

/** Fetch `sha256` as a GGUF file from a hostile member announcing `size` and sending `body`. */
async function fetchFrom (sha256: string, size: number, body: Uint8Array): Promise<Attempt> {
  const dir = tempDir()
  const dest = path.join(dir, 'models', `${sha256}.gguf`)
  const [outbound, inbound] = await streamPair()
  const served = hostileServer(inbound, size, body)
  const error = await fetchModelOver(outbound, sha256, dest, { checkHead: { bytes: MODEL_HEAD_BYTES, problem: (h) => headProblem('gguf', h) } })
    .then(() => null, (e: unknown) => e as ModelFetchError)
  const { sent } = await served
  return { error, sent, left: fs.existsSync(path.join(dir, 'models')) ? fs.readdirSync(path.join(dir, 'models')) : [] }
}

/** A GGUF-looking head (magic, version 3) and random bytes after it. */
function ggufLike (bytes: number): Buffer {
  const b = randomBytes(bytes)
  b.writeUInt32LE(0x46554747, 0)
  b.writeUInt32LE(3, 4)
  return b
}

describe('fetching a GGUF file from a hostile member', () => {
  it('other bytes than the sha256 asked for: wrong-hash, and no file', async () => {
    const asked = sha(randomBytes(32))
    const a = await fetchFrom(asked, 300_000, ggufLike(300_000))
    expect(a.error).toBeInstanceOf(ModelFetchError)
    expect(a.error?.reason).toBe('wrong-hash')
    expect(a.left).toEqual([])
  })

  it('more bytes than it announced: oversized, cut off at the announced size', async () => {
    const body = ggufLike(400_000)
    const a = await fetchFrom(sha(body.subarray(0, 300_000)), 300_000, body)
    expect(a.error?.reason).toBe('oversized')
    expect(a.left).toEqual([])
  })

  it('a file that is not GGUF: not-a-model at its first bytes, long before the size it announced', async () => {
    const body = randomBytes(8 << 20)
    const a = await fetchFrom(sha(body), body.byteLength, body)
    expect(a.error?.reason).toBe('not-a-model')
    expect(a.error?.message).toMatch(/does not start with the GGUF magic/)
    // yamux's window lets a few hundred KiB through before the abort reaches the sender
    expect(a.sent).toBeLessThan(body.byteLength / 2)
    expect(a.left).toEqual([])
  })

  it('a GGUF version this reader does not know: not-a-model', async () => {
    const body = ggufLike(100_000)
    body.writeUInt32LE(7, 4)
    const a = await fetchFrom(sha(body), body.byteLength, body)
    expect(a.error?.reason).toBe('not-a-model')
    expect(a.error?.message).toMatch(/GGUF version 7/)
  })

  it('an announced size beyond the free disk space: no-space before a byte is written', async () => {
    const a = await fetchFrom(sha(randomBytes(32)), 2 ** 39, ggufLike(1000))
    expect(a.error?.reason).toBe('no-space')
    expect(a.left).toEqual([])
  })

  it('the right sha256 but a corrupt GGUF header: the file is fetched, then refused as unservable and removed', async () => {
    const body = ggufLike(200_000)
    const sha256 = sha(body)
    const dir = tempDir()
    const dest = path.join(dir, `${sha256}.gguf`)
    const [outbound, inbound] = await streamPair()
    const served = hostileServer(inbound, body.byteLength, body)
    expect(await fetchModelOver(outbound, sha256, dest, { checkHead: { bytes: MODEL_HEAD_BYTES, problem: (h) => headProblem('gguf', h) } })).toBe(body.byteLength)
    await served
    const err = await adoptFetched(dest, BUNDLED_MODEL.tokenizerPath, { format: 'gguf', modelId: modelIdentity(sha256, sha256).id }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ModelFetchError)
    expect((err as ModelFetchError).reason).toBe('unservable')
    expect(fs.existsSync(dest)).toBe(false)
  })
})

describe.skipIf(SHARED_DIR === null)('the head check on real files', () => {
  it('passes every shared GGUF file as GGUF and the llama2.c checkpoint as llama2c, and neither as the other', () => {
    const head = (p: string): Uint8Array => { const b = Buffer.alloc(MODEL_HEAD_BYTES); const fd = fs.openSync(p, 'r'); fs.readSync(fd, b, 0, b.byteLength, 0); fs.closeSync(fd); return b }
    for (const f of fs.readdirSync(sharedPath('models/gguf')).filter((n) => n.endsWith('.gguf'))) {
      expect(headProblem('gguf', head(sharedPath(`models/gguf/${f}`))), f).toBeNull()
      expect(headProblem('llama2c', head(sharedPath(`models/gguf/${f}`))), f).toMatch(/is a GGUF file/)
    }
    expect(headProblem('llama2c', head(BUNDLED_MODEL.checkpointPath))).toBeNull()
    expect(headProblem('gguf', head(BUNDLED_MODEL.checkpointPath))).toMatch(/GGUF magic/)
  })
})
