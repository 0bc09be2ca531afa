import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { execFile, type ChildProcess } from 'node:child_process'
import dgram from 'node:dgram'
import net from 'node:net'
import { promisify } from 'node:util'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { CERT_PROTOCOL, encodeCertBundle } from '../../src/agent/net/cert-bundle.js'
import { probeNat } from '../../src/nat/probe.js'
import { freeUdpPort } from '../helpers/agent-procs.js'
import { exited, makeMember, makePool, tempHome, type TestMember } from '../helpers/members.js'
import { RELAY, startRelay as startRelayIn, type RunningRelay } from '../helpers/relay.js'

const run = promisify(execFile)
const ECHO = '/mesh-test/echo/1.0.0'

const procs: ChildProcess[] = []
const nodes: Libp2p[] = []

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async (n) => { await n.stop() }))
  await Promise.all(procs.splice(0).map(async (p) => { if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM'); await exited(p) }))
})

const startRelay = async (home: string, args: string[]): Promise<RunningRelay> => await startRelayIn(home, args, procs)

/** A pool member's libp2p node, keyed by its device key, that shows its certificate to the relay as agents do. */
async function memberNode (m: TestMember, relay: RunningRelay, reserve: boolean): Promise<Libp2p> {
  const node = await createLibp2p({
    start: false,
    privateKey: await generateKeyPairFromSeed('Ed25519', m.seed),
    addresses: { listen: reserve ? [`${relay.addr}/p2p-circuit`] : [] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  nodes.push(node)
  const relayPeer = peerIdFromString(relay.peerId)
  node.addEventListener('connection:open', (e) => {
    if (e.detail.remotePeer.equals(relayPeer)) void showCertificate(node, relayPeer, m.certBytes)
  })
  await node.handle(ECHO, async (stream) => {
    for await (const chunk of stream) if (!stream.send(chunk)) await stream.onDrain()
    await stream.close()
  }, { runOnLimitedConnection: true })
  await node.start()
  return node
}

async function showCertificate (node: Libp2p, relay: PeerId, cert: Uint8Array): Promise<void> {
  const stream = await node.dialProtocol(relay, CERT_PROTOCOL)
  await lpStream(stream).write(encodeCertBundle({ certificates: [cert], revocations: [] }))
  await stream.close()
}

function circuitAddress (node: Libp2p): string | undefined {
  return node.getMultiaddrs().map((a) => a.toString()).find((a) => a.includes('/p2p-circuit'))
}

/** Send `bytes` through the echo protocol and count what comes back. */
async function echo (from: Libp2p, to: string, bytes: number): Promise<{ back: number, limited: boolean }> {
  const stream = await from.dialProtocol(multiaddr(to), ECHO, { runOnLimitedConnection: true })
  const chunk = new Uint8Array(64 * 1024).fill(7)
  const writing = (async () => {
    for (let sent = 0; sent < bytes; sent += chunk.length) if (!stream.send(chunk)) await stream.onDrain()
    await stream.close()
  })()
  let back = 0
  for await (const c of stream) back += c.byteLength
  await writing
  const conn = from.getConnections().find((c) => c.remoteAddr.toString().includes('/p2p-circuit'))
  return { back, limited: conn?.limits !== undefined }
}

describe('mesh-relay on 127.0.0.1', () => {
  it('relays between certified members, more than libp2p\'s 128 KiB per connection', async () => {
    const pool = makePool()
    const relay = await startRelay(tempHome(), ['--pool-root-pubkey', Buffer.from(pool.rootPublicKey).toString('hex')])
    const a = await memberNode(makeMember(pool, 'alice'), relay, true)
    await expect.poll(() => circuitAddress(a), { timeout: 15_000 }).toBeDefined()
    const b = await memberNode(makeMember(pool, 'bob'), relay, false)
    await b.dial(multiaddr(relay.addr))
    const r = await echo(b, circuitAddress(a) as string, 1024 * 1024)
    expect(r).toEqual({ back: 1024 * 1024, limited: true })
  })

  it('refuses reservations and relayed connections to peers without a valid certificate of their own', async () => {
    const pool = makePool()
    const relay = await startRelay(tempHome(), ['--pool-root-pubkey', Buffer.from(pool.rootPublicKey).toString('hex')])
    const alice = makeMember(pool, 'alice')
    const a = await memberNode(alice, relay, true)
    await expect.poll(() => circuitAddress(a), { timeout: 15_000 }).toBeDefined()

    const outsider = makeMember(makePool(), 'outsider') // a valid certificate, of a pool not served
    const thief = { ...makeMember(pool, 'thief'), certBytes: alice.certBytes } // alice's certificate, its own key
    const expired = makeMember(pool, 'old', { notBefore: Date.now() - 7_200_000, notAfter: Date.now() - 3_600_000 })
    const refused = await Promise.all([outsider, thief, expired].map(async (m) => await memberNode(m, relay, true).then(() => 'reserved', (e: Error) => e.message)))
    for (const r of refused) expect(r).toMatch(/reservation failed with status PERMISSION_DENIED/)

    // without a reservation of its own, an outsider still cannot reach a member through the relay
    const c = await memberNode(outsider, relay, false)
    await c.dial(multiaddr(relay.addr))
    await expect(c.dialProtocol(multiaddr(circuitAddress(a) as string), ECHO, { runOnLimitedConnection: true })).rejects.toThrow(/PERMISSION_DENIED/)
  })

  it('a taken port is a one-line error, exit 1', async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      const r = await run(process.execPath, [RELAY, '--home', tempHome(), '--host', '127.0.0.1', '--port', String(port)])
        .then(() => { throw new Error('expected failure') }, (e: { code: number, stdout: string, stderr: string }) => e)
      expect(r.code).toBe(1)
      expect(r.stdout).toBe('')
      expect(r.stderr.trim().split('\n')).toEqual([`mesh-relay: port ${port} on 127.0.0.1 is already in use; stop what uses it or pick another --port`])
    } finally {
      await new Promise((resolve) => blocker.close(resolve))
    }
  })

  it('answers STUN on its --stun-port values and prints them; a prober there finds no NAT on loopback', async () => {
    const ports = [await freeUdpPort(), await freeUdpPort()]
    const relay = await startRelay(tempHome(), ports.flatMap((p) => ['--stun-port', String(p)]))
    expect(relay.stun).toEqual({ host: '127.0.0.1', ports })
    const out = await probeNat([{ address: '127.0.0.1', port: ports[0] as number }])
    expect(out.observation.answers.map((a) => a.server.port).sort()).toEqual([...ports].sort()) // the second port from OTHER-ADDRESS
    expect(out.verdict.type).toBe('public')
  })

  it('a bad or taken --stun-port is a one-line error', async () => {
    const fails = async (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> =>
      await run(process.execPath, [RELAY, '--home', tempHome(), '--host', '127.0.0.1', '--port', '0', ...args])
        .then(() => { throw new Error('expected failure') }, (e: { code: number, stdout: string, stderr: string }) => e)
    const bad = await fails(['--stun-port', '70000'])
    expect(bad.stderr.trim().split('\n')).toEqual(['mesh-relay: --stun-port must be a port number 1-65535, or 0 for none (got 70000)'])
    const twice = await fails(['--stun-port', '5000', '--stun-port', '5000'])
    expect(twice.stderr.trim().split('\n')).toEqual(['mesh-relay: --stun-port names a port twice (5000, 5000)'])
    const blocker = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => { blocker.bind(0, '127.0.0.1', () => { resolve() }) })
    const port = blocker.address().port
    try {
      const taken = await fails(['--stun-port', String(port)])
      expect(taken.code).toBe(1)
      expect(taken.stdout).toBe('')
      expect(taken.stderr.trim().split('\n')).toEqual([`mesh-relay: UDP port ${port} on 127.0.0.1 is already in use for STUN; pick other --stun-port values (0: none)`])
    } finally {
      blocker.close()
    }
  })

  it('keeps its identity across restarts', async () => {
    const home = tempHome()
    const first = await startRelay(home, [])
    first.proc.kill('SIGTERM')
    await exited(first.proc)
    const second = await startRelay(home, [])
    expect(second.peerId).toBe(first.peerId)
  })
})
