import net from 'node:net'
import { readFileSync } from 'node:fs'
import { Duplex, PassThrough } from 'node:stream'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { generate } from '../../src/inference/generate.js'
import { readCheckpointHeader } from '../../src/inference/checkpoint.js'
import { loadShardModel } from '../../src/inference/model.js'
import { createSampler } from '../../src/inference/sampler.js'
import { shardForColumns } from '../../src/inference/shard.js'
import { TensorLinkError } from '../../src/inference/tensor-plane/errors.js'
import { planeAllReduce } from '../../src/inference/tensor-plane/all-reduce.js'
import { sealFrame } from '../../src/inference/tensor-plane/frame.js'
import { deriveLinkKeys } from '../../src/inference/tensor-plane/keys.js'
import { TensorPlane } from '../../src/inference/tensor-plane/plane.js'
import { allReduces, connectedPlanes, PAIR_SECRET } from '../helpers/tensor-planes.js'

let open: TensorPlane[] = []
const sockets: net.Socket[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await Promise.all(open.splice(0).map(async (p) => { await p.close() }))
})
async function planes (ids: string[], maxPayloadBytes?: number): Promise<TensorPlane[]> {
  const ps = await connectedPlanes(ids, maxPayloadBytes)
  open.push(...ps)
  return ps
}

const randomVector = (n: number, seed: number): Float32Array => {
  let x = seed
  return Float32Array.from({ length: n }, () => { x = (x * 1103515245 + 12345) % 2 ** 31; return x / 2 ** 31 - 0.5 })
}

describe('all-to-all all-reduce over the tensor plane', () => {
  it.each([2, 3])('gives all %i members the same sum, added in ring order, at every step', async (n) => {
    const ids = Array.from({ length: n }, (_, i) => `node-${i}`)
    const ps = await planes(ids)
    const nLayers = 3
    const reduces = allReduces(ps, 42, nLayers)
    for (let step = 0; step < 4 * nLayers; step++) {
      const partials = ids.map((_, m) => randomVector(768, 1000 * step + m + 1))
      const expected = new Float32Array(768)
      for (const p of partials) for (let i = 0; i < 768; i++) expected[i] += p[i]
      await Promise.all(reduces.map(async (r, m) => { await r.allReduce(partials[m]) }))
      for (const p of partials) expect(Buffer.from(p.buffer)).toEqual(Buffer.from(expected.buffer))
    }
    for (const p of ps) expect([...p.drops.entries()]).toEqual([])
  })

  it('with q8 partials gives every member the same sum, each partial within its blocks\' rounding', async () => {
    const ids = ['m0', 'm1', 'm2']
    const ps = await planes(ids)
    const reduces = ps.map((plane) => planeAllReduce({ plane, job: 5, members: ids, nLayers: 1, partials: 'q8', timeoutMs: 10_000 }))
    for (const [k, kind] of (['attention', 'ffn'] as const).entries()) {
      const partials = ids.map((_, m) => randomVector(100, 10 * k + m + 1))
      const exact = new Float32Array(100)
      for (const p of partials) for (let i = 0; i < 100; i++) exact[i] += p[i]
      await Promise.all(reduces.map(async (r, m) => { await r.allReduce(partials[m], { position: 0, layer: 0, kind }) }))
      for (const p of partials) expect(Buffer.from(p.buffer)).toEqual(Buffer.from(partials[0].buffer))
      for (let i = 0; i < 100; i++) expect(Math.abs(partials[0][i] - exact[i])).toBeLessThan(3 * 0.5 / 127)
    }
    for (const p of ps) expect([...p.drops.entries()]).toEqual([])
  })

  it('gathers every member\'s logits slice on the leader, in member order, empty slices included', async () => {
    const ids = ['m0', 'm1', 'm2']
    const ps = await planes(ids)
    const gathers = ps.map((plane) => planeAllReduce({ plane, job: 3, members: ids, leader: 'm1', nLayers: 1, timeoutMs: 10_000 }).gatherLogits)
    for (const position of [0, 5, 6]) {
      const slices = [randomVector(7, position + 1), randomVector(5, position + 2), new Float32Array(0)]
      const [, led] = await Promise.all([gathers[0](slices[0], position), gathers[1](slices[1], position), gathers[2](slices[2], position)])
      expect([...led!]).toEqual([...slices[0], ...slices[1]])
    }
    expect(gathers[0](new Float32Array(1), 7)).toBeUndefined() // a member only sends
    for (const p of ps) expect([...p.drops.entries()]).toEqual([])
  })

  it('drops a logits slice sent to a member that does not lead, or with a value that is not finite', async () => {
    const ids = ['m0', 'm1', 'm2']
    const ps = await planes(ids)
    ps.forEach((plane) => planeAllReduce({ plane, job: 4, members: ids, leader: 'm0', nLayers: 1, timeoutMs: 10_000 }))
    ps[2].send('m1', { kind: 'logits', layer: 0, job: 4, position: 0 }, new Float32Array(3))
    ps[2].send('m0', { kind: 'logits', layer: 0, job: 4, position: 0 }, new Float32Array([1, Number.NaN]))
    await vi.waitFor(() => { expect(ps[1].dropCount('not-leader')).toBe(1) })
    await vi.waitFor(() => { expect(ps[0].dropCount('bad-logits')).toBe(1) })
  })

  it('fails a step with a typed error when a member leaves, instead of waiting forever', async () => {
    const [a, b] = await planes(['a', 'b'])
    const [ra] = allReduces([a, b], 1, 2)
    const step = ra.allReduce(new Float32Array(8))
    await b.close()
    await expect(step).rejects.toBeInstanceOf(TensorLinkError)
  })
})

describe('tensor-plane links', () => {
  it('run over any byte stream, not only TCP (a relayed stream in the agent)', async () => {
    const [a, b] = ['a', 'b'].map((selfId) => new TensorPlane({ selfId, secretFor: () => PAIR_SECRET, maxPayloadBytes: 256, epoch: 1 }))
    open.push(a, b)
    const ab = new PassThrough(); const ba = new PassThrough()
    b.acceptOver(Duplex.from({ readable: ab, writable: ba }), 'a')
    await a.dialOver('b', Duplex.from({ readable: ba, writable: ab }))
    await vi.waitFor(() => { expect(b.hasLink('a')).toBe(true) })
    const [ra, rb] = allReduces([a, b], 3, 1)
    const x = Float32Array.of(1, 2); const y = Float32Array.of(10, 20)
    await Promise.all([ra.allReduce(x), rb.allReduce(y)])
    expect([...x, ...y]).toEqual([11, 22, 11, 22])
  })

  it('refuses a stream whose hello names another member than the peer it came from', async () => {
    const [a, b] = ['a', 'b'].map((selfId) => new TensorPlane({ selfId, secretFor: () => PAIR_SECRET, maxPayloadBytes: 256, epoch: 1 }))
    open.push(a, b)
    const ab = new PassThrough(); const ba = new PassThrough()
    b.acceptOver(Duplex.from({ readable: ab, writable: ba }), 'c') // the stream's authenticated peer is c, its hello says a
    await expect(a.dialOver('b', Duplex.from({ readable: ba, writable: ab }))).rejects.toBeInstanceOf(TensorLinkError)
    expect(b.dropCount('wrong-peer')).toBe(1)
    expect(b.hasLink('a')).toBe(false)
  })

  it('refuses a peer without the pair secret, and a stranger', async () => {
    const listener = new TensorPlane({ selfId: 'a', secretFor: (p) => p === 'b' ? PAIR_SECRET : undefined, maxPayloadBytes: 256, epoch: 1 })
    const wrongSecret = new TensorPlane({ selfId: 'b', secretFor: () => Buffer.alloc(32, 9), maxPayloadBytes: 256, epoch: 1 })
    const stranger = new TensorPlane({ selfId: 'c', secretFor: () => PAIR_SECRET, maxPayloadBytes: 256, epoch: 1 })
    open.push(listener, wrongSecret, stranger)
    const { host, port } = await listener.listen()
    await expect(wrongSecret.connect('a', host, port)).rejects.toBeInstanceOf(TensorLinkError)
    await expect(stranger.connect('a', host, port)).rejects.toBeInstanceOf(TensorLinkError)
    await vi.waitFor(() => { expect([listener.dropCount('handshake-failed'), listener.dropCount('unknown-peer')]).toEqual([1, 1]) })
    expect(listener.hasLink('b')).toBe(false)
  })

  it('closes an accepted connection that never completes its handshake', async () => {
    const plane = new TensorPlane({ selfId: 'a', secretFor: () => PAIR_SECRET, maxPayloadBytes: 64, epoch: 1, handshakeMs: 200 })
    open.push(plane)
    const { host, port } = await plane.listen()
    const socket = net.connect({ host, port })
    sockets.push(socket)
    socket.on('error', () => {})
    let closed = false
    socket.on('close', () => { closed = true })
    socket.resume()
    socket.write(Buffer.from([5, 0x61])) // announces a 5-byte id, sends one byte
    await vi.waitFor(() => { expect(closed).toBe(true) })
    expect(plane.dropCount('handshake-timeout')).toBe(1)
  })

  /** A hand-driven peer "b" on a raw socket, so the test can put any bytes on the wire. */
  async function rawPeer (): Promise<{ plane: TensorPlane, frame: (seq: number, o?: { epoch?: number, key?: Buffer }) => Buffer, write: (b: Buffer) => void, closed: () => boolean }> {
    const plane = new TensorPlane({ selfId: 'a', secretFor: (p) => p === 'b' ? PAIR_SECRET : undefined, maxPayloadBytes: 64, epoch: 5 })
    open.push(plane)
    const { host, port } = await plane.listen()
    const keys = deriveLinkKeys(PAIR_SECRET, 'b', 'a')
    const frame = (seq: number, o: { epoch?: number, key?: Buffer } = {}): Buffer =>
      sealFrame(o.key ?? keys.send, { kind: 'attention', layer: 0, job: 9, epoch: o.epoch ?? 5, position: 0, seq }, new Float32Array([1, 2, 3, 4]))
    const socket = net.connect({ host, port, noDelay: true })
    sockets.push(socket)
    socket.on('error', () => {})
    let closed = false
    socket.on('close', () => { closed = true })
    socket.resume()
    socket.write(Buffer.concat([Buffer.from([1]), Buffer.from('b'), sealFrame(keys.send, { kind: 'hello', layer: 0, job: 0, epoch: 5, position: 0, seq: 0 }, new Float32Array(0))]))
    await vi.waitFor(() => { expect(plane.hasLink('b')).toBe(true) })
    return { plane, frame, write: (b) => socket.write(b), closed: () => closed }
  }

  it('drops tampered, wrongly keyed, replayed and stale-epoch frames with counted reasons, and keeps the link', async () => {
    const { plane, frame, write } = await rawPeer()
    const accepted: Float32Array[] = []
    plane.openJob(9, { frame: (_p, _h, payload) => { accepted.push(payload); return null }, linkClosed: () => {} })

    const tampered = frame(1)
    tampered[30] ^= 1 // a ciphertext bit
    write(tampered)
    write(frame(1, { key: Buffer.alloc(32, 1) }))
    write(frame(1)) // genuine: accepted
    write(frame(1)) // the same frame again
    write(frame(3)) // skips 2
    write(frame(2, { epoch: 4 }))
    write(frame(3, { epoch: 6 }))
    write(frame(4)) // genuine: accepted
    await vi.waitFor(() => { expect(accepted).toHaveLength(2) })
    expect(Object.fromEntries(plane.drops)).toEqual({ 'auth-failed': 2, replayed: 1, 'sequence-gap': 1, 'stale-epoch': 1, 'future-epoch': 1 })
    expect([...accepted[0]]).toEqual([1, 2, 3, 4])
  })

  it('closes a link whose frame header announces more than the bound, without buffering it', async () => {
    const { plane, write, closed } = await rawPeer()
    const header = Buffer.alloc(26)
    header.writeUInt8(1, 0); header.writeUInt8(1, 1); header.writeUInt32BE(1 << 30, 22)
    write(header)
    await vi.waitFor(() => { expect(closed()).toBe(true) })
    expect(plane.dropCount('oversize')).toBe(1)
    await vi.waitFor(() => { expect(plane.hasLink('b')).toBe(false) })
  })

  it('drops frames for a job it has not opened, and frames out of step', async () => {
    const { plane, frame, write } = await rawPeer()
    write(frame(1))
    await vi.waitFor(() => { expect(plane.dropCount('unknown-job')).toBe(1) })
    planeAllReduce({ plane, job: 9, members: ['a', 'b'], nLayers: 2, timeoutMs: 10_000 })
    write(sealFrame(deriveLinkKeys(PAIR_SECRET, 'b', 'a').send, { kind: 'ffn', layer: 1, job: 9, epoch: 5, position: 0, seq: 2 }, new Float32Array(4)))
    await vi.waitFor(() => { expect(plane.dropCount('wrong-step')).toBe(1) })
  })
})

describe('stories260K split across two members over the tensor plane', () => {
  const golden = JSON.parse(readFileSync('test/fixtures/golden/stories260K-greedy.json', 'utf8')) as { generations: Array<{ prompt: string, steps: number, prompt_token_ids: number[], token_ids: number[] }> }

  it.each([[4096], [2731]])('generates the golden greedy token ids on both members (split at column %i)', async (cut) => {
    const g = golden.generations.find((x) => x.prompt === 'Once upon a time' && x.steps === 64)
    if (g === undefined) throw new Error('golden case missing')
    const c = (await readCheckpointHeader('models/stories260K/stories260K.bin')).config
    const ps = await planes(['m0', 'm1'], 4 * c.dim)
    const reduces = allReduces(ps, 7, c.nLayers)
    const ranges = [[0, cut], [cut, 8192]]
    const runs = await Promise.all(ranges.map(async ([start, end], i) => {
      // each member loads only its own slices of the weights
      const { model: m, tokenizer } = await loadShardModel({
        checkpointPath: 'models/stories260K/stories260K.bin',
        tokenizerPath: 'models/stories260K/tok512.bin',
        shard: shardForColumns(c, start, end),
        engine: { name: 'wasm', threads: 1 },
        withClassifier: true
      })
      const result = await generate(m, tokenizer, { prompt: g.prompt, maxTokens: g.steps - g.prompt_token_ids.length + 1, sampler: createSampler({ temperature: 0, topP: 0.9, seed: 1n }), allReduce: reduces[i].allReduce })
      await m.matmuls.close()
      return result.tokenIds
    }))
    expect(runs[0]).toEqual(g.token_ids)
    expect(runs[1]).toEqual(g.token_ids)
    for (const p of ps) expect([...p.drops.entries()]).toEqual([])
  })
})
