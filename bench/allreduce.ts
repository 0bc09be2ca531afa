/**
 * All-reduce of one 768-float vector between two member processes on 127.0.0.1: p50 and p99
 * latency of one all-reduce call on the tensor plane (TCP, Nagle off, AES-256-GCM frames); the same
 * plane frames over a libp2p stream (what an agent falls back to when members reach each other only
 * through a relay, here without the relay hop); and, for comparison, raw vectors over a libp2p
 * stream (TCP + Noise + Yamux). Rounds alternate the transports so machine load hits all alike;
 * each figure is the median over rounds. Never asserted anywhere.
 *
 *   node --import tsx bench/allreduce.ts [rounds=5] [calls=1000]
 *   ALLREDUCE_DIM=2048 ALLREDUCE_F64=1 node --import tsx bench/allreduce.ts   # a GGUF ring's frames (Llama 3.2 1B: float64 partials)
 */
import '../src/polyfill.js'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { byteStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import os from 'node:os'
import { createLibp2p, type Libp2p } from 'libp2p'
import { streamDuplex } from '../src/agent/net/stream-duplex.js'
import { planeAllReduce } from '../src/inference/tensor-plane/all-reduce.js'
import { TensorPlane } from '../src/inference/tensor-plane/plane.js'

const DIM = Number(process.env.ALLREDUCE_DIM ?? 768)
/** the tensor plane's partials as float64, as GGUF rings send them (the raw libp2p figure stays float32) */
const WIDE = process.env.ALLREDUCE_F64 === '1'
const partial = (): Float32Array | Float64Array => WIDE ? new Float64Array(DIM) : new Float32Array(DIM)
const PROTOCOL = '/mesh/bench-allreduce/1.0.0'
const PLANE_PROTOCOL = '/mesh/bench-allreduce-plane/1.0.0'
const SECRET = Buffer.alloc(32, 3) // a bench-only pair secret; the agent agrees a real one over libp2p
const WARMUP = 200
const [role, roundsArg, callsArg] = process.argv[2] === 'peer' ? ['peer', process.argv[3], process.argv[4]] : ['lead', process.argv[2], process.argv[3]]
const ROUNDS = Number(roundsArg ?? 5)
const CALLS = Number(callsArg ?? 1000)
const IDS = ['m0', 'm1']

const quantile = (xs: number[], q: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))] }
const median = (xs: number[]): number => quantile(xs, 0.5)

async function startPlane (selfId: string): Promise<{ plane: TensorPlane, reduce: (v: Float32Array | Float64Array) => Promise<void> }> {
  const plane = new TensorPlane({ selfId, secretFor: (p) => IDS.includes(p) ? SECRET : undefined, maxPayloadBytes: (WIDE ? 8 : 4) * DIM, epoch: 1 })
  // one "layer" per position: the step header just counts calls
  const { allReduce } = planeAllReduce({ plane, job: 1, members: IDS, nLayers: 1, timeoutMs: 30_000 })
  let calls = 0
  return { plane, reduce: async (v) => { const n = calls++; await allReduce(v, { position: n >> 1, layer: 0, kind: n % 2 === 0 ? 'attention' : 'ffn' }) } }
}

/** Both sides: send the own partial, read the other's, add them (in member order, as the plane does). */
async function libp2pReduce (io: ReturnType<typeof byteStream>, v: Float32Array, self: number): Promise<void> {
  await io.write(new Uint8Array(v.buffer.slice(0)))
  // a copy: the bytes may be a Buffer view into a shared pool, where slice() does not copy
  const other = new Float32Array(new Uint8Array((await io.read({ bytes: 4 * DIM })).subarray()).buffer)
  const [a, b] = self === 0 ? [v, other] : [other, v]
  for (let i = 0; i < DIM; i++) v[i] = a[i] + b[i]
}

async function startLibp2p (): Promise<Libp2p> {
  return await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
}

if (role === 'peer') {
  const { plane, reduce } = await startPlane('m1')
  const overStream = await startPlane('m1')
  const address = await plane.listen()
  const node = await startLibp2p()
  let gotStream!: (io: ReturnType<typeof byteStream>) => void
  const streamed = new Promise<ReturnType<typeof byteStream>>((resolve) => { gotStream = resolve })
  await node.handle(PROTOCOL, (stream) => { gotStream(byteStream(stream)) })
  await node.handle(PLANE_PROTOCOL, (stream) => { overStream.plane.acceptOver(streamDuplex(stream)) })
  process.send?.({ address, libp2p: node.getMultiaddrs()[0].toString() })
  while (!plane.hasLink('m0') || !overStream.plane.hasLink('m0')) await new Promise((resolve) => setTimeout(resolve, 5))
  const io = await streamed
  const v = new Float32Array(DIM).fill(1)
  const p = partial()
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < WARMUP + CALLS; i++) { p.fill(1); await reduce(p) }
    for (let i = 0; i < WARMUP + CALLS; i++) { p.fill(1); await overStream.reduce(p) }
    for (let i = 0; i < WARMUP + CALLS; i++) { v.fill(1); await libp2pReduce(io, v, 1) }
  }
  await node.stop()
  await plane.close()
  await overStream.plane.close()
} else {
  const child = fork(new URL(import.meta.url).pathname, ['peer', String(ROUNDS), String(CALLS)], { execArgv: ['--import', 'tsx'] })
  try {
    const [hello] = await once(child, 'message') as [{ address: { host: string, port: number }, libp2p: string }]
    const { plane, reduce } = await startPlane('m0')
    await plane.connect('m1', hello.address.host, hello.address.port)
    const node = await startLibp2p()
    const overStream = await startPlane('m0')
    await overStream.plane.dialOver('m1', streamDuplex(await node.dialProtocol(multiaddr(hello.libp2p), PLANE_PROTOCOL)))
    const io = byteStream(await node.dialProtocol(multiaddr(hello.libp2p), PROTOCOL))
    const v = new Float32Array(DIM)
    const p = partial()
    const timed = async (call: () => Promise<void>, u: Float32Array | Float64Array): Promise<{ p50: number, p99: number }> => {
      const us: number[] = []
      for (let i = 0; i < WARMUP + CALLS; i++) {
        u.fill(2)
        const t0 = performance.now()
        await call()
        if (i >= WARMUP) us.push((performance.now() - t0) * 1000)
        if (u[0] !== 3) throw new Error(`all-reduce summed to ${u[0]}, expected 3`)
      }
      return { p50: median(us), p99: quantile(us, 0.99) }
    }
    const plane50: number[] = []; const plane99: number[] = []; const lp50: number[] = []; const lp99: number[] = []
    const ps50: number[] = []; const ps99: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const t = await timed(async () => { await reduce(p) }, p)
      const s = await timed(async () => { await overStream.reduce(p) }, p)
      const l = await timed(async () => { await libp2pReduce(io, v, 0) }, v)
      plane50.push(t.p50); plane99.push(t.p99); ps50.push(s.p50); ps99.push(s.p99); lp50.push(l.p50); lp99.push(l.p99)
      console.log(`round ${r + 1}: tensor plane p50 ${t.p50.toFixed(0)} µs p99 ${t.p99.toFixed(0)} µs | plane over libp2p p50 ${s.p50.toFixed(0)} µs p99 ${s.p99.toFixed(0)} µs | libp2p p50 ${l.p50.toFixed(0)} µs p99 ${l.p99.toFixed(0)} µs`)
    }
    console.log(`all-reduce of ${DIM} ${WIDE ? 'float64 (tensor plane), float32 (raw libp2p)' : 'float32'}, 2 processes on 127.0.0.1, ${ROUNDS} rounds × ${CALLS} calls (medians over rounds); load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, ${os.cpus().length} cores`)
    console.log(`  tensor plane (TCP + AES-256-GCM): p50 ${median(plane50).toFixed(0)} µs, p99 ${median(plane99).toFixed(0)} µs`)
    console.log(`  tensor plane over a libp2p stream: p50 ${median(ps50).toFixed(0)} µs, p99 ${median(ps99).toFixed(0)} µs`)
    console.log(`  libp2p stream (Noise + Yamux):    p50 ${median(lp50).toFixed(0)} µs, p99 ${median(lp99).toFixed(0)} µs`)
    await node.stop()
    await plane.close()
    await overStream.plane.close()
    await once(child, 'exit')
  } finally {
    if (child.exitCode === null) child.kill()
  }
}
