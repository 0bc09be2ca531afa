import { streamPair } from '@libp2p/utils'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { fetchModelOver, ModelFetchError, serveModelStream } from '../../src/agent/net/model-transfer.js'
import { tempDirs } from '../helpers/pool-fixtures.js'

const silent = pino({ level: 'silent' })
const tempDir = tempDirs('mesh-model-limits-')

/** A checkpoint-sized file served over a yamux stream pair whose connection carries these relay limits. */
async function transfer (limits: { bytes?: bigint } | undefined): Promise<{ served: string, fetched: Promise<number>, dest: string }> {
  const dir = tempDir()
  const file = path.join(dir, 'model.bin')
  fs.writeFileSync(file, randomBytes(300_000))
  const sha256 = createHash('sha256').update(fs.readFileSync(file)).digest('hex')
  const [outbound, inbound] = await streamPair()
  const dest = path.join(dir, 'fetched', 'model.bin')
  const fetched = fetchModelOver(outbound, sha256, dest)
  fetched.catch(() => {}) // awaited by the test, after the server's answer
  const served = await serveModelStream(inbound, { path: file, sha256 }, silent, limits)
  return { served, fetched, dest }
}

describe('/mesh/model/1.0.0 on relayed connections', () => {
  it('sends a checkpoint that fits half the relay\'s byte allowance, and over a direct connection always', async () => {
    for (const limits of [undefined, { bytes: 600_000n }, {}]) {
      const t = await transfer(limits)
      expect(t.served).toBe('sent')
      expect(await t.fetched).toBe(300_000)
      expect(fs.statSync(t.dest).size).toBe(300_000)
    }
  })

  it('answers "too large" for one that does not: the fetcher gets a typed reason and no file', async () => {
    const t = await transfer({ bytes: 599_999n })
    expect(t.served).toBe('too-large')
    const err = await t.fetched.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ModelFetchError)
    expect((err as ModelFetchError).reason).toBe('too-large')
    expect((err as Error).message).toMatch(/300000 bytes\) is too large for the relayed connection/)
    expect(fs.existsSync(t.dest)).toBe(false)
  })
})
