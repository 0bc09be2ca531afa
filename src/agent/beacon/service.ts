import type { CertRequest, MemberCert } from '../../pool/index.js'
import type { BeaconConfig } from '../config.js'
import type { Logger } from '../log.js'
import { RateLimitedWarner } from '../log.js'
import { emptyDropCounts, receiveBeacon, type Accepted, type DropCounts, type DropReason, type PoolTrustView } from './receive.js'
import { ReplayGuard } from './replay.js'
import { verifySignature } from '../../pool/keys.js'
import type { Signer } from './signing.js'
import { UdpBeaconTransport, type Source, type UnicastTarget } from './transport.js'
import { BeaconSequence, encodeBeacon, type BeaconBody } from './wire.js'

export type AcceptedBeacon = Accepted<MemberCert, CertRequest>

export interface BeaconServiceComponents {
  signer: Signer
  clock: () => number
  log: Logger
  /** the pools we listen for, by hex id, read at each packet (the set changes at pool-join) */
  pools: () => ReadonlyMap<string, PoolTrustView<MemberCert, CertRequest>>
  onAccepted: (beacon: AcceptedBeacon, from: Source) => void
  onInterfacesChanged: () => void
}

export interface BeaconStats {
  group: string
  port: number
  interfaces: string[]
  bootstrap: string[]
  sent: number
  received: number
  accepted: number
  drops: DropCounts
}

/**
 * Sends and receives signed beacons: numbers and signs outgoing ones, runs every datagram through
 * the receive pipeline, counts each drop by reason and hands accepted beacons on.
 */
export class BeaconService {
  private readonly transport: UdpBeaconTransport
  private readonly seq: BeaconSequence
  private readonly replay = new ReplayGuard()
  private readonly warner: RateLimitedWarner
  private readonly drops = emptyDropCounts()
  private sent = 0
  private received = 0
  private accepted = 0
  private poll: NodeJS.Timeout | undefined

  constructor (private readonly cfg: BeaconConfig, private readonly c: BeaconServiceComponents) {
    this.seq = new BeaconSequence(c.clock())
    this.warner = new RateLimitedWarner(c.log)
    this.transport = new UdpBeaconTransport(
      { group: cfg.group, port: cfg.port, ttl: cfg.ttl, loopback: cfg.loopback, interfaces: cfg.interfaces },
      {
        onDatagram: (data, from) => { this.onDatagram(data, from) },
        onError: (what, err) => { this.warner.warn(`udp:${what}`, this.c.clock(), { err: err.message }, `beacon ${what} failed`) }
      }
    )
  }

  async start (): Promise<void> {
    await this.transport.start()
    this.c.log.info({ group: this.cfg.group, port: this.transport.port, interfaces: this.transport.interfaces }, 'beacons listening')
    if (this.cfg.interfaces === undefined && this.poll === undefined) {
      this.poll = setInterval(() => {
        void this.transport.refreshInterfaces().then((changed) => {
          if (!changed) return
          this.c.log.info({ interfaces: this.transport.interfaces }, 'network interfaces changed')
          this.c.onInterfacesChanged()
        })
      }, this.cfg.interfacePollMs)
      this.poll.unref()
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.poll)
    this.poll = undefined
    await this.transport.stop()
  }

  send (poolId: string, body: BeaconBody, unicast: readonly UnicastTarget[] = []): void {
    const now = this.c.clock()
    const data = encodeBeacon({ ...body, poolId: Buffer.from(poolId, 'hex'), sender: this.c.signer.publicKey, seq: this.seq.take(), timestampMs: now }, this.c.signer.sign)
    this.transport.send(data, [...this.cfg.bootstrap, ...unicast])
    this.sent++
  }

  /** A drop decided after the pipeline (e.g. an admin's per-sender rate limit). */
  countDrop (reason: DropReason): void { this.drops[reason]++ }

  stats (): BeaconStats {
    return {
      group: this.cfg.group,
      port: this.transport.port,
      interfaces: this.transport.interfaces,
      bootstrap: this.cfg.bootstrap.map((b) => `${b.host}:${b.port}`),
      sent: this.sent,
      received: this.received,
      accepted: this.accepted,
      drops: { ...this.drops }
    }
  }

  private onDatagram (data: Uint8Array, from: Source): void {
    this.received++
    const now = this.c.clock()
    const r = receiveBeacon(data, {
      self: this.c.signer.publicKey, pools: this.c.pools(), now, maxSkewMs: this.cfg.maxSkewMs, replay: this.replay, verify: verifySignature
    })
    if (!r.ok) {
      this.drops[r.reason]++
      // expected, harmless drops are only counted; the rest say something may be wrong on the LAN
      if (r.reason !== 'own' && r.reason !== 'other-pool' && r.reason !== 'duplicate' && r.reason !== 'not-for-us' && r.reason !== 'not-admin') {
        this.warner.warn(`drop:${r.reason}:${from.address}`, now, { from: from.address, reason: r.reason, detail: r.detail }, 'dropped a beacon')
      }
      return
    }
    this.accepted++
    this.c.onAccepted(r.accepted, from)
  }
}
