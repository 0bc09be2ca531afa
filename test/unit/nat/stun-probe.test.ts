/**
 * The STUN responder and the prober over real UDP on 127.0.0.1: a responder on two ports gives
 * the prober two destinations (the second learned from OTHER-ADDRESS), so a host without NAT
 * classifies as public; a closed port is UDP blocked; hostile datagrams at the responder are
 * dropped and counted and it keeps answering.
 */
import dgram from 'node:dgram'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { probeNat } from '../../../src/nat/probe.js'
import { StunResponder } from '../../../src/nat/stun-server.js'
import { encodeBindingRequest, MAX_STUN_BYTES } from '../../../src/nat/stun.js'

const started: StunResponder[] = []
afterEach(() => { for (const r of started.splice(0)) r.stop() })

async function responder (ports: number[]): Promise<StunResponder> {
  const r = new StunResponder({ host: '127.0.0.1', ports })
  started.push(r)
  await r.start()
  return r
}

describe('STUN responder and prober on 127.0.0.1', () => {
  it('two ports of one responder: both answer with our own socket address, so the verdict is public', async () => {
    const r = await responder([0, 0])
    const [first] = r.ports()
    const out = await probeNat([{ address: '127.0.0.1', port: first as number }])
    expect(out.observation.answers.map((a) => a.server.port).sort()).toEqual([...r.ports()].sort())
    for (const a of out.observation.answers) expect(a.mapped).toEqual({ address: '127.0.0.1', port: out.observation.local.port })
    expect(out.verdict).toMatchObject({ type: 'public', publicEndpoint: { address: '127.0.0.1', port: out.observation.local.port }, hairpin: true })
    expect(r.stats().answered).toBe(2)
  })

  it('no answer from a port nobody listens on: udp-blocked, within the deadline', async () => {
    const r = await responder([0])
    const port = r.ports()[0] as number
    r.stop() // the port is closed now
    const t0 = performance.now()
    const out = await probeNat([{ address: '127.0.0.1', port }], { timeoutMs: 600 })
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(out.verdict.type).toBe('udp-blocked')
  })

  it('drops and counts hostile datagrams, and still answers', async () => {
    const r = await responder([0])
    const port = r.ports()[0] as number
    const s = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => { s.bind(0, '127.0.0.1', () => { resolve() }) })
    const send = async (b: Uint8Array): Promise<void> => { await new Promise<void>((resolve) => { s.send(b, port, '127.0.0.1', () => { resolve() }) }) }
    await send(new Uint8Array(MAX_STUN_BYTES + 100))
    await send(Uint8Array.from([1, 2, 3]))
    await send(Buffer.from('GET / HTTP/1.1\r\nHost: relay\r\n\r\n'))
    await vi.waitFor(() => { expect(r.stats().drops).toEqual({ oversized: 1, truncated: 1, 'not-stun': 1 }) }, { timeout: 2000, interval: 10 })
    const answer = new Promise<Buffer>((resolve) => { s.once('message', resolve) })
    await send(encodeBindingRequest(new Uint8Array(12).fill(7)))
    expect((await answer).length).toBe(32)
    s.close()
  })
})
