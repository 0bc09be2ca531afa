import net from 'node:net'
import type { Duplex } from 'node:stream'
import { TensorLinkError, NonceExhaustedError } from './errors.js'
import { decodeHeader, HEADER_BYTES, MAX_SEQ, openFrame, sealFrame, TAG_BYTES, type FrameHeader, type FrameKind, type HeaderFault } from './frame.js'
import { deriveLinkKeys, type LinkKeys } from './keys.js'

/** Why a frame was dropped while its link stayed open. */
export type FrameDrop =
  | 'auth-failed' // tag does not verify: tampered, or sealed with another key
  | 'replayed' // sequence number already received
  | 'sequence-gap' // sequence number ahead of the next expected one (a frame was lost or withheld)
  | 'stale-epoch' | 'future-epoch' // not the ring epoch this member is in
  | 'unknown-job' // no all-reduce open for that job here
  | 'not-member' // the job's members do not include the sender
  | 'wrong-step' // not the layer/position/kind the sender must be at
  | 'too-far-ahead' // the sender is more steps ahead than the protocol allows
  | 'unexpected-hello'
  | 'not-leader' // a token frame from a member that does not lead the job
  | 'bad-token' // a token frame that is not one embedding row (dim finite floats)
  | 'bad-logits' // a logits slice with a value that is not finite
/** Why a link was closed: the byte stream can no longer be framed, or the peer is not who it must be. */
export type LinkClose = HeaderFault | 'bad-hello' | 'unknown-peer' | 'wrong-peer' | 'handshake-failed' | 'handshake-timeout' | 'duplicate-link'
export type DropReason = FrameDrop | LinkClose

/** What a job's all-reduce does with frames: a returned reason drops the frame (counted). */
export interface JobHandler {
  /** The ring epoch the job was planned on; frames of any other epoch are dropped. Default: the plane's. */
  readonly epoch?: number
  frame: (peerId: string, h: FrameHeader, payload: Float32Array) => FrameDrop | null
  linkClosed: (peerId: string) => void
}

export interface TensorPlaneOptions {
  readonly selfId: string
  /** The secret agreed with a member over the certificate-checked control plane; undefined: not a member. */
  readonly secretFor: (peerId: string) => Uint8Array | undefined
  /** Largest payload accepted, in bytes: 4 × the model's dim. */
  readonly maxPayloadBytes: number
  readonly epoch: number
  /** An accepted connection must prove the pair secret this fast, or it is closed rather than left holding a socket. */
  readonly handshakeMs?: number
}

const MAX_ID_BYTES = 255

/**
 * The tensor plane of one member: one TCP connection per peer (Nagle off), every frame sealed with
 * that direction's AES-256-GCM key. The dialer opens with its id (one length byte, then UTF-8) and a
 * sealed hello; the listener answers with its own sealed hello, so each side proves it holds the
 * pair's secret before any tensor is accepted.
 */
export class TensorPlane {
  readonly selfId: string
  epoch: number
  readonly drops = new Map<DropReason, number>()
  private readonly links = new Map<string, Link>()
  private readonly jobs = new Map<number, JobHandler>()
  private readonly linkWaiters = new Map<string, Array<() => void>>()
  private readonly sockets = new Set<Duplex>()
  private server: net.Server | null = null

  constructor (readonly opts: TensorPlaneOptions) {
    const idBytes = Buffer.byteLength(opts.selfId)
    if (idBytes === 0 || idBytes > MAX_ID_BYTES) throw new TensorLinkError(`node id ${JSON.stringify(opts.selfId)} must be 1 to ${MAX_ID_BYTES} bytes of UTF-8`)
    this.selfId = opts.selfId
    this.epoch = opts.epoch
  }

  dropCount (reason: DropReason): number { return this.drops.get(reason) ?? 0 }
  hasLink (peerId: string): boolean { return this.links.has(peerId) }

  /** Each linked peer and what its link runs on: a direct TCP socket, or another byte stream (dialOver). */
  linkTransports (): Record<string, 'tcp' | 'stream'> {
    return Object.fromEntries([...this.links].map(([peer, link]) => [peer, link.overTcp ? 'tcp' : 'stream']))
  }

  async listen (port = 0, host = '127.0.0.1'): Promise<{ host: string, port: number }> {
    const server = net.createServer((socket) => { this.accept(socket) })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => { server.off('error', reject); resolve() })
    })
    const a = server.address() as net.AddressInfo
    return { host: a.address, port: a.port }
  }

  /** Dial a peer's tensor plane; resolves once the peer has proved it holds the pair's secret. */
  async connect (peerId: string, host: string, port: number): Promise<void> {
    if (this.opts.secretFor(peerId) === undefined) throw new TensorLinkError(`${peerId} is not a member this node shares a tensor-plane secret with`)
    await this.dialOver(peerId, net.connect({ host, port, noDelay: true }))
  }

  /**
   * Run the dialer's side of a link over any byte stream already open to the peer (a TCP socket;
   * a relayed libp2p stream when no direct connection works): the frames and checks are the same.
   */
  async dialOver (peerId: string, stream: Duplex): Promise<void> {
    const secret = this.opts.secretFor(peerId)
    if (secret === undefined) throw new TensorLinkError(`${peerId} is not a member this node shares a tensor-plane secret with`)
    const id = Buffer.from(this.selfId)
    this.track(stream)
    const link = new Link(this, stream, peerId, deriveLinkKeys(secret, this.selfId, peerId))
    stream.write(Buffer.concat([Buffer.from([id.length]), id]))
    link.sendHello()
    await link.ready
  }

  /** Seal and send one payload to a peer, on the job's epoch (the plane's if the job names none). */
  send (peerId: string, h: { kind: FrameKind, layer: number, job: number, position: number }, payload: Float32Array): void {
    const link = this.links.get(peerId)
    if (link === undefined) throw new TensorLinkError(`no tensor-plane link to ${peerId}`)
    link.send({ ...h, epoch: this.jobs.get(h.job)?.epoch ?? this.epoch }, payload)
  }

  openJob (job: number, handler: JobHandler): void { this.jobs.set(job, handler) }
  closeJob (job: number): void { this.jobs.delete(job) }

  async close (): Promise<void> {
    for (const s of this.sockets) s.destroy()
    const server = this.server
    if (server !== null) await new Promise<void>((resolve) => server.close(() => { resolve() }))
  }

  /** @internal a link's accepted frame: epoch and job are checked here, the rest by the job. */
  deliver (peerId: string, h: FrameHeader, payload: Float32Array): void {
    const job = this.jobs.get(h.job)
    const epoch = job?.epoch ?? this.epoch
    if (h.epoch < epoch) return this.count('stale-epoch')
    if (h.epoch > epoch) return this.count('future-epoch')
    if (job === undefined) return this.count('unknown-job')
    const drop = job.frame(peerId, h, payload)
    if (drop !== null) this.count(drop)
  }

  /** @internal */
  count (reason: DropReason): void { this.drops.set(reason, this.dropCount(reason) + 1) }

  /** @internal a link finished its handshake */
  register (peerId: string, link: Link): boolean {
    if (this.links.has(peerId)) return false
    this.links.set(peerId, link)
    for (const w of this.linkWaiters.get(peerId) ?? []) w()
    this.linkWaiters.delete(peerId)
    return true
  }

  /** Resolves once a link to the peer is up (the peer dials it); TensorLinkError after `timeoutMs`. */
  async waitForLink (peerId: string, timeoutMs: number): Promise<void> {
    if (this.links.has(peerId)) return
    await new Promise<void>((resolve, reject) => {
      const done = (): void => { clearTimeout(timer); resolve() }
      const timer = setTimeout(() => {
        const rest = (this.linkWaiters.get(peerId) ?? []).filter((w) => w !== done)
        if (rest.length === 0) this.linkWaiters.delete(peerId); else this.linkWaiters.set(peerId, rest)
        reject(new TensorLinkError(`${peerId} did not open its tensor-plane link within ${timeoutMs} ms`))
      }, timeoutMs)
      this.linkWaiters.set(peerId, [...(this.linkWaiters.get(peerId) ?? []), done])
    })
  }

  /**
   * Close the link to a peer (it moves to a better path: a relayed stream once a direct connection
   * exists). Its jobs hear linkClosed as for any lost link; false when there was none.
   */
  closeLink (peerId: string): boolean {
    const link = this.links.get(peerId)
    if (link === undefined) return false
    this.unregister(peerId, link)
    link.close()
    return true
  }

  /** @internal */
  unregister (peerId: string, link: Link): void {
    if (this.links.get(peerId) !== link) return
    this.links.delete(peerId)
    for (const job of this.jobs.values()) job.linkClosed(peerId)
  }

  private track (socket: Duplex): void {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
  }

  private accept (socket: net.Socket): void {
    socket.setNoDelay(true)
    this.acceptOver(socket)
  }

  /**
   * The listener's side of a link over any byte stream a peer opened (see dialOver). `from`: the
   * peer the stream is known to come from (a libp2p stream's authenticated peer); a hello naming
   * another member is refused.
   */
  acceptOver (socket: Duplex, from?: string): void {
    this.track(socket)
    socket.on('error', () => {}) // the close that follows cleans up
    const timer = setTimeout(() => { this.count('handshake-timeout'); socket.destroy() }, this.opts.handshakeMs ?? 5_000)
    const finish = (): void => { clearTimeout(timer) }
    socket.once('close', finish)
    let pending = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      pending = Buffer.concat([pending, chunk])
      if (pending.length < 1 || pending.length < 1 + pending[0]) return
      socket.off('data', onData)
      const idBytes = pending[0]
      const peerId = pending.subarray(1, 1 + idBytes).toString('utf8')
      if (from !== undefined && idBytes > 0 && peerId !== from) {
        this.count('wrong-peer')
        socket.destroy()
        return
      }
      const secret = idBytes === 0 || peerId === this.selfId ? undefined : this.opts.secretFor(peerId)
      if (secret === undefined) {
        this.count(idBytes === 0 ? 'bad-hello' : 'unknown-peer')
        socket.destroy()
        return
      }
      const link = new Link(this, socket, peerId, deriveLinkKeys(secret, this.selfId, peerId))
      link.ready.then(finish, () => {}) // a failed handshake is counted and the socket closed
      link.receive(pending.subarray(1 + idBytes))
    }
    socket.on('data', onData)
  }
}

/** One authenticated, encrypted connection to a peer: framing, sealing, sequence checks. */
class Link {
  private pending: Buffer = Buffer.alloc(0)
  private sendSeq = 0
  private receiveSeq = 0 // the next sequence number the peer must send
  private handshaken = false
  private readonly settle: { resolve: () => void, reject: (e: Error) => void }
  readonly ready: Promise<void>

  constructor (private readonly plane: TensorPlane, private readonly socket: Duplex, private readonly peerId: string, private readonly keys: LinkKeys) {
    let settle!: { resolve: () => void, reject: (e: Error) => void }
    this.ready = new Promise<void>((resolve, reject) => { settle = { resolve, reject } })
    this.settle = settle
    socket.on('data', (chunk: Buffer) => { this.receive(chunk) })
    socket.on('error', (e) => { this.settle.reject(new TensorLinkError(`tensor-plane link to ${peerId}: ${e.message}`)) })
    socket.on('close', () => {
      this.settle.reject(new TensorLinkError(`tensor-plane link to ${peerId} closed before its handshake`))
      this.plane.unregister(peerId, this)
    })
  }

  get overTcp (): boolean { return this.socket instanceof net.Socket }

  close (): void { this.socket.destroy() }

  sendHello (): void { this.send({ kind: 'hello', layer: 0, job: 0, epoch: this.plane.epoch, position: 0 }, new Float32Array(0)) }

  send (h: Omit<FrameHeader, 'seq' | 'payloadBytes'>, payload: Float32Array): void {
    if (this.sendSeq > MAX_SEQ) throw new NonceExhaustedError(`tensor-plane link to ${this.peerId} has used every nonce; reconnect it`)
    this.socket.write(sealFrame(this.keys.send, { ...h, seq: this.sendSeq++ }, payload))
  }

  receive (chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    while (this.pending.length >= HEADER_BYTES && !this.socket.destroyed) {
      const h = decodeHeader(this.pending, this.plane.opts.maxPayloadBytes)
      if (typeof h === 'string') return this.fail(h)
      const total = HEADER_BYTES + h.payloadBytes + TAG_BYTES
      if (this.pending.length < total) return
      const frame = this.pending.subarray(0, total)
      this.pending = this.pending.subarray(total)
      this.frame(h, frame)
    }
  }

  private frame (h: FrameHeader, frame: Buffer): void {
    const payload = openFrame(this.keys.receive, frame.subarray(0, HEADER_BYTES), h, frame.subarray(HEADER_BYTES, HEADER_BYTES + h.payloadBytes), frame.subarray(HEADER_BYTES + h.payloadBytes))
    if (!this.handshaken) {
      // the first frame must be a genuine hello: anything else means a stranger or a wrong secret
      if (payload === null || h.kind !== 'hello' || h.seq !== 0) return this.fail('handshake-failed')
      this.receiveSeq = 1
      this.handshaken = true
      if (!this.plane.register(this.peerId, this)) return this.fail('duplicate-link')
      if (this.sendSeq === 0) this.sendHello() // the listener answers the dialer's hello
      this.settle.resolve()
      return
    }
    if (payload === null) return this.plane.count('auth-failed')
    if (h.seq < this.receiveSeq) return this.plane.count('replayed')
    if (h.seq > this.receiveSeq) return this.plane.count('sequence-gap')
    this.receiveSeq++
    if (h.kind === 'hello') return this.plane.count('unexpected-hello')
    this.plane.deliver(this.peerId, h, payload)
  }

  private fail (reason: LinkClose): void {
    this.plane.count(reason)
    this.settle.reject(new TensorLinkError(`tensor-plane link to ${this.peerId} closed: ${reason}`))
    this.socket.destroy()
  }
}
