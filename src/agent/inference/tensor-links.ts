import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto'
import net from 'node:net'
import { z } from 'zod'
import { pairSecret } from '../../inference/tensor-plane/keys.js'
import { TensorLinkError } from '../../inference/tensor-plane/errors.js'
import { TensorPlane } from '../../inference/tensor-plane/plane.js'
import type { Logger } from '../log.js'
import { connectionPath } from '../net/connection-path.js'
import { streamDuplex } from '../net/stream-duplex.js'

/** Tensor-plane keys and addresses, agreed over the certificate-gated libp2p connection. */
export const TENSOR_PROTOCOL = '/mesh/tensor/1.0.0'
/** The same link's frames over a libp2p stream, when no direct TCP connection works (members behind NATs, a relay between them). */
export const TENSOR_STREAM_PROTOCOL = '/mesh/tensor-stream/1.0.0'
const MAX_MESSAGE_BYTES = 1024

/** What the links need of the pool network (PoolNetwork provides it). */
export interface MemberStreams {
  handleMemberProtocol: (protocol: string, handler: (stream: Stream, nodeId: string) => Promise<void>, maxInboundStreams: number) => Promise<void>
  openMemberStream: (nodeId: string, protocol: string, signal: AbortSignal) => Promise<Stream>
  remoteAddressOf: (nodeId: string) => string | undefined
  isAdmitted: (nodeId: string, poolId: string) => boolean
}

export interface TensorLinksComponents {
  readonly net: MemberStreams
  readonly selfId: string
  readonly log: Logger
}

export interface TensorLinksInit {
  /** the interface the plane listens on: the one libp2p binds (every IPv4 interface by default) */
  readonly host?: string
  /** largest frame accepted: a step's rows, 4 bytes × dim × the positions a step carries (the default, 1 MiB, is 128 positions of a 2048-wide model) */
  readonly maxPayloadBytes?: number
  readonly timeoutMs?: number
  /** how long a direct TCP link may take to connect and prove the secret before the libp2p stream is used instead */
  readonly directTimeoutMs?: number
}

const hello = z.strictObject({ poolId: z.string().regex(/^[0-9a-f]{64}$/), publicKey: z.string().regex(/^[0-9a-f]{64}$/), port: z.number().int().min(1).max(65535) })
const answer = z.union([
  z.strictObject({ publicKey: z.string().regex(/^[0-9a-f]{64}$/), port: z.number().int().min(1).max(65535) }),
  z.strictObject({ refused: z.string().max(200) })
])

// an X25519 public key as SPKI DER is this fixed prefix and the 32 raw bytes
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')
const rawPublicKey = (k: KeyObject): string => k.export({ type: 'spki', format: 'der' }).subarray(X25519_SPKI_PREFIX.length).toString('hex')
const importPublicKey = (hex: string): KeyObject => createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, Buffer.from(hex, 'hex')]), format: 'der', type: 'spki' })

/** The interface the tensor plane binds: the first IPv4 address libp2p listens on. */
export function planeHost (libp2pListen: readonly string[]): string {
  for (const a of libp2pListen) {
    const m = /^\/ip4\/([\d.]+)\/tcp\//.exec(a)
    if (m !== null) return m[1]
  }
  return '0.0.0.0'
}

/** The TCP address a libp2p connection came over, if it is a direct IPv4 one. */
export function directHost (remoteAddr: string): string | undefined {
  return /^\/ip4\/(\d{1,3}(?:\.\d{1,3}){3})\/tcp\/\d+(?:\/p2p\/[1-9A-Za-z]+)?$/.exec(remoteAddr)?.[1]
}

/**
 * This agent's tensor plane and how its links come up. For each pair of job members the one with
 * the smaller node id opens a /mesh/tensor stream: both send an ephemeral X25519 key and their plane's
 * port, derive the pair secret (bound to the pool and both ids), and the smaller id dials the TCP
 * link to the address the libp2p connection reached. When that connection is relayed, or the TCP
 * link does not come up within `directTimeoutMs`, the same frames run over a /mesh/tensor-stream
 * stream on the libp2p connection instead (slower: hundreds of µs a round trip, twice encrypted).
 * The other side waits for that link. The secret only ever crosses a Noise channel to a peer
 * whose certificate was checked.
 */
export class TensorLinks {
  readonly plane: TensorPlane
  private readonly secrets = new Map<string, Buffer>()
  private readonly pending = new Map<string, Promise<void>>()
  /** peers whose link runs over a relayed libp2p connection: moved once a direct one exists */
  private readonly relayed = new Set<string>()
  private port = 0
  private readonly timeoutMs: number
  private readonly directTimeoutMs: number

  constructor (private readonly c: TensorLinksComponents, private readonly init: TensorLinksInit = {}) {
    this.timeoutMs = init.timeoutMs ?? 10_000
    // a LAN connects in a millisecond; a busy member may take a while to answer the hello
    this.directTimeoutMs = init.directTimeoutMs ?? 2000
    this.plane = new TensorPlane({ selfId: c.selfId, secretFor: (p) => this.secrets.get(p), maxPayloadBytes: init.maxPayloadBytes ?? 1 << 20, epoch: 0 })
  }

  async start (): Promise<void> {
    if (this.port !== 0) return
    this.port = (await this.plane.listen(0, this.init.host ?? '0.0.0.0')).port
    await this.c.net.handleMemberProtocol(TENSOR_PROTOCOL, async (stream, from) => { await this.answer(stream, from) }, 32)
    // the plane's handshake proves the pair secret, as on its TCP port
    await this.c.net.handleMemberProtocol(TENSOR_STREAM_PROTOCOL, async (stream, nodeId) => {
      this.markPath(nodeId, this.c.net.remoteAddressOf(nodeId))
      this.plane.acceptOver(streamDuplex(stream), nodeId)
    }, 32)
    this.c.log.info({ port: this.port }, 'tensor plane listening')
  }

  async stop (): Promise<void> { await this.plane.close() }

  /** Links to every peer of a job in `poolId`: dial those with a larger id, wait for the others. */
  async link (poolId: string, peers: readonly string[]): Promise<void> {
    await Promise.all(peers.map(async (peer) => {
      this.moveOffRelay(peer)
      if (this.plane.hasLink(peer)) return
      if (this.c.selfId > peer) { await this.plane.waitForLink(peer, this.timeoutMs); return }
      let p = this.pending.get(peer)
      if (p === undefined) {
        p = this.dial(poolId, peer).finally(() => this.pending.delete(peer))
        this.pending.set(peer, p)
      }
      await p
    }))
  }

  private markPath (peer: string, remoteAddr: string | undefined): void {
    if (remoteAddr !== undefined && connectionPath(remoteAddr) === 'relayed') this.relayed.add(peer)
    else this.relayed.delete(peer)
  }

  /**
   * A link over the relay while a direct (or hole-punched) connection to the peer now exists: close
   * it before a job starts, so this job's link is made on the better path. Both sides do it; the
   * side that waits also drops its old link when the dialer's key exchange arrives (answer).
   */
  private moveOffRelay (peer: string): void {
    if (!this.relayed.has(peer) || !this.plane.hasLink(peer)) return
    const now = this.c.net.remoteAddressOf(peer)
    if (now === undefined || connectionPath(now) === 'relayed') return
    this.relayed.delete(peer)
    this.plane.closeLink(peer)
    this.c.log.info({ peer, via: now }, 'tensor-plane link moves off the relay')
  }

  private async dial (poolId: string, peer: string): Promise<void> {
    const { publicKey, privateKey } = generateKeyPairSync('x25519')
    const stream = await this.c.net.openMemberStream(peer, TENSOR_PROTOCOL, AbortSignal.timeout(this.timeoutMs))
    const remoteAddr = this.c.net.remoteAddressOf(peer) ?? 'no connection'
    const host = directHost(remoteAddr)
    let port: number
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      await lp.write(Buffer.from(JSON.stringify({ poolId, publicKey: rawPublicKey(publicKey), port: this.port })))
      const parsed = answer.safeParse(JSON.parse(Buffer.from((await lp.read({ signal: AbortSignal.timeout(this.timeoutMs) })).subarray()).toString('utf8')))
      if (!parsed.success) throw new TensorLinkError(`member ${peer} sent a malformed tensor-plane key answer`)
      if ('refused' in parsed.data) throw new TensorLinkError(`member ${peer} refused a tensor-plane link: ${parsed.data.refused}`)
      const shared = diffieHellman({ privateKey, publicKey: importPublicKey(parsed.data.publicKey) })
      this.secrets.set(peer, pairSecret(shared, poolId, this.c.selfId, peer))
      port = parsed.data.port
      await stream.close()
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err instanceof TensorLinkError ? err : new TensorLinkError(`cannot link the tensor plane to ${peer}: ${(err as Error).message}`)
    }
    const path = host !== undefined && await this.direct(peer, host, port) ? 'tcp' : await this.overStream(peer)
    this.markPath(peer, path === 'tcp' ? undefined : remoteAddr)
    this.c.log.info({ peer, path, via: remoteAddr }, 'tensor-plane link up')
  }

  /** A direct TCP link, or false (logged) if it does not come up in time: a NAT or firewall between us. */
  private async direct (peer: string, host: string, port: number): Promise<boolean> {
    const socket = net.connect({ host, port, noDelay: true })
    const timer = setTimeout(() => { socket.destroy(new Error(`no answer within ${this.directTimeoutMs} ms`)) }, this.directTimeoutMs)
    try {
      await this.plane.dialOver(peer, socket)
      return true
    } catch (err) {
      this.c.log.info({ peer, host, port, err: (err as Error).message }, 'no direct tensor-plane link; using a stream on the libp2p connection')
      return false
    } finally {
      clearTimeout(timer)
    }
  }

  private async overStream (peer: string): Promise<'stream'> {
    try {
      const stream = await this.c.net.openMemberStream(peer, TENSOR_STREAM_PROTOCOL, AbortSignal.timeout(this.timeoutMs))
      await this.plane.dialOver(peer, streamDuplex(stream))
      return 'stream'
    } catch (err) {
      throw err instanceof TensorLinkError ? err : new TensorLinkError(`cannot link the tensor plane to ${peer} over libp2p: ${(err as Error).message}`)
    }
  }

  /** The other side of `dial`: only a member of the pool it names, and only one with a smaller id, gets a secret. */
  private async answer (stream: Stream, from: string): Promise<void> {
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      const parsed = hello.safeParse(JSON.parse(Buffer.from((await lp.read({ signal: AbortSignal.timeout(this.timeoutMs) })).subarray()).toString('utf8')))
      const refuse = async (why: string): Promise<void> => { await lp.write(Buffer.from(JSON.stringify({ refused: why }))); await stream.close() }
      if (!parsed.success) return await refuse('malformed request')
      if (!this.c.net.isAdmitted(from, parsed.data.poolId)) return await refuse('not a member of that pool')
      if (from >= this.c.selfId) return await refuse('the member with the smaller node id opens the link')
      // the dialer asks for a new secret only when it has no link: ours is stale (or on the relay it left)
      if (this.plane.closeLink(from)) this.c.log.info({ peer: from }, 'tensor-plane link replaced at the peer\'s request')
      const { publicKey, privateKey } = generateKeyPairSync('x25519')
      const shared = diffieHellman({ privateKey, publicKey: importPublicKey(parsed.data.publicKey) })
      this.secrets.set(from, pairSecret(shared, parsed.data.poolId, this.c.selfId, from))
      await lp.write(Buffer.from(JSON.stringify({ publicKey: rawPublicKey(publicKey), port: this.port })))
      await stream.close()
    } catch (err) {
      this.c.log.debug({ peer: from, err: String(err) }, 'tensor-plane key exchange failed')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}
