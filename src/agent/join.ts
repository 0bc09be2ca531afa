import { MeshError } from '../errors.js'
import { backoffDelayMs } from './backoff.js'
import {
  acceptCertificate, certRequestFor, decodeMemberCert, handleCertRequest, recordBytes, type CertRequest, type MemberCert
} from '../pool/index.js'
import type { AcceptedBeacon, BeaconService } from './beacon/service.js'
import type { Source } from './beacon/transport.js'
import type { JoinConfig } from './config.js'
import { RateLimitedWarner, type Logger } from './log.js'
import { TokenBucket } from '../token-bucket.js'
import type { PoolDirectory } from './pools.js'

/** The n-th certificate-request retry delay (n from 0). Pure; `random` in [0, 1). */
export function retryDelayMs (n: number, cfg: JoinConfig, random: number): number {
  return backoffDelayMs(n, { initialMs: cfg.requestInitialMs, factor: cfg.requestFactor, maxMs: cfg.requestMaxMs, jitter: cfg.requestJitter }, random)
}

/** Renew when less than a third of the certificate's lifetime is left. */
export function needsRenewal (cert: Pick<MemberCert, 'notBefore' | 'notAfter'>, now: number): boolean {
  return now >= cert.notAfter - (cert.notAfter - cert.notBefore) / 3
}

function decodeMemberCertOr (bytes: Uint8Array): MemberCert | undefined {
  try { return decodeMemberCert(bytes) } catch { return undefined }
}

/** senders and held requests remembered at most; the oldest go first */
const MAX_TRACKED = 1024
/** certificate-request decisions: a LAN of joining devices needs a handful a second */
const DECISIONS_BURST = 20
const DECISIONS_PER_SECOND = 10

export interface JoinStats {
  requestsSent: number
  installed: number
  issued: number
  answeredFromCache: number
  pending: number
  refused: Record<string, number>
}

export interface CertJoinComponents {
  home: string
  beacons: Pick<BeaconService, 'send' | 'countDrop'>
  pools: PoolDirectory
  clock: () => number
  random: () => number
  log: Logger
  /** our certificate changed: tell the LAN */
  onCertInstalled: (poolId: string) => void
  /** also ask over libp2p, on the same schedule as the beacons */
  remote?: RemoteCertRequester
}

interface Backoff { attempt: number, nextAt: number }

/** How a certificate request was decided. */
export type JoinDecision =
  | { kind: 'certificate', cert: MemberCert }
  | { kind: 'pending' } // policy manual (or a refused token the admin may still approve)
  | { kind: 'refused', reason: string }
  | { kind: 'rate-limited' }
  | { kind: 'undecided', reason: string } // not this device's to decide (not the admin, unknown pool)

/** Asks for certificates over libp2p (cert-request.ts), for members no beacon of the admin reaches. */
export interface RemoteCertRequester {
  /** resolves with the certificate bytes and who gave them, or undefined (nobody to ask, or no certificate yet) */
  request: (poolId: string, requestBytes: Uint8Array) => Promise<{ cert: Uint8Array, from: string } | undefined>
}
interface Answer { cert: MemberCert, to: Source }

/**
 * Certificates over beacons. Member side: while a pool waits for its certificate (or the held one
 * nears expiry) send cert-requests with exponential backoff, and install a valid response. Admin
 * side: decide requests with the pool library's policy (src/pool handleCertRequest), answer repeats
 * from a cache instead of re-signing, rate-limit each sender, and send the certificate as soon as
 * `mesh pool-approve` signs a pending request.
 */
export class CertJoin {
  private readonly backoff = new Map<string, Backoff>()
  /** per pool and requester node id: the certificate we gave it */
  private readonly answers = new Map<string, MemberCert>()
  /** requests held for manual approval: where to send the certificate once approved */
  private readonly waiting = new Map<string, { poolId: string, nodeId: string, to: Source }>()
  private readonly lastAnswerAt = new Map<string, number>()
  private readonly decisions = new TokenBucket(DECISIONS_BURST, DECISIONS_PER_SECOND)
  private readonly warner: RateLimitedWarner
  private readonly stats: JoinStats = { requestsSent: 0, installed: 0, issued: 0, answeredFromCache: 0, pending: 0, refused: {} }
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly cfg: JoinConfig, private readonly c: CertJoinComponents) {
    // a refused request is logged once per sender and reason, not once per retry
    this.warner = new RateLimitedWarner(c.log, 10 * 60_000)
  }

  start (): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => { this.tick() }, Math.min(250, this.cfg.requestInitialMs))
    this.timer.unref()
    this.tick()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  snapshot (): JoinStats { return { ...this.stats, pending: this.waiting.size, refused: { ...this.stats.refused } } }

  /** The pool store changed (pool-join, pool-approve…): new pending pools ask at once. */
  poolsChanged (): void {
    this.sendApproved()
    this.tick()
  }

  private tick (): void {
    const now = this.c.clock()
    for (const pool of this.c.pools.all()) {
      const wants = pool.cert === undefined || needsRenewal(pool.cert, now)
      if (!wants || pool.isAdmin) { this.backoff.delete(pool.poolId); continue }
      const b = this.backoff.get(pool.poolId) ?? { attempt: 0, nextAt: now }
      if (now < b.nextAt) continue
      try {
        const req = certRequestFor(this.c.home, pool.poolId, now)
        this.c.beacons.send(pool.poolId, { type: 'cert-request', request: req.bytes })
        this.stats.requestsSent++
        void this.c.remote?.request(pool.poolId, req.bytes).then((got) => {
          if (got !== undefined) this.install(pool.poolId, decodeMemberCertOr(got.cert), got.from)
        }).catch((err: unknown) => { this.c.log.debug({ pool: pool.poolId, err: String(err) }, 'certificate request over libp2p failed') })
        this.c.log.debug({ pool: pool.poolId, attempt: b.attempt }, 'sent certificate request')
      } catch (err) {
        if (!(err instanceof MeshError)) throw err
        this.warner.warn(`request:${pool.poolId}`, now, { pool: pool.poolId, err: err.message }, 'cannot make a certificate request')
      }
      this.backoff.set(pool.poolId, { attempt: b.attempt + 1, nextAt: now + retryDelayMs(b.attempt, this.cfg, this.c.random()) })
    }
  }

  onBeacon (a: AcceptedBeacon, from: Source): void {
    if (a.type === 'cert-response') this.install(a.poolId, a.cert, from.address)
    else if (a.type === 'cert-request') this.answer(a.poolId, a.request, from)
  }

  private install (poolId: string, cert: MemberCert | undefined, from: string): void {
    if (cert === undefined) { this.warner.warn(`install:${poolId}`, this.c.clock(), { pool: poolId, from }, 'a received certificate does not decode'); return }
    const pool = this.c.pools.get(poolId)
    if (pool?.cert !== undefined && pool.cert.serial === cert.serial) return // a repeat of what we hold
    try {
      const held = acceptCertificate(this.c.home, poolId, cert.bytes, this.c.clock())
      this.stats.installed++
      this.backoff.delete(poolId)
      this.c.log.info({ pool: poolId, serial: held.serial, notAfter: new Date(held.notAfter).toISOString(), from }, 'certificate installed')
      this.c.onCertInstalled(poolId)
    } catch (err) {
      if (!(err instanceof MeshError)) throw err
      this.warner.warn(`install:${poolId}`, this.c.clock(), { pool: poolId, err: err.message }, 'could not install a received certificate')
    }
  }

  private answer (poolId: string, req: CertRequest, from: Source): void {
    const d = this.decide(poolId, req)
    if (d.kind === 'rate-limited') { this.c.beacons.countDrop('rate-limited'); return }
    const key = `${poolId}/${req.nodeId}`
    if (d.kind === 'certificate') this.respond(poolId, { cert: d.cert, to: from })
    else if (d.kind === 'pending') {
      if (this.waiting.size >= MAX_TRACKED) this.waiting.delete(this.waiting.keys().next().value as string)
      this.waiting.set(key, { poolId, nodeId: req.nodeId, to: from })
    }
  }

  /**
   * Decide a certificate request, however it came (a beacon, or libp2p's /mesh/cert-request):
   * repeats within answerMinIntervalMs are rate-limited, a certificate already issued is given
   * again, fresh decisions share one budget and follow the pool's policy (src/pool handleCertRequest).
   */
  decide (poolId: string, req: CertRequest): JoinDecision {
    const now = this.c.clock()
    const key = `${poolId}/${req.nodeId}`
    const last = this.lastAnswerAt.get(key)
    if (last !== undefined && now - last < this.cfg.answerMinIntervalMs) return { kind: 'rate-limited' }
    if (this.lastAnswerAt.size >= MAX_TRACKED) this.lastAnswerAt.delete(this.lastAnswerAt.keys().next().value as string)
    this.lastAnswerAt.delete(key)
    this.lastAnswerAt.set(key, now)

    const cached = this.answers.get(key) ?? this.issuedOnDisk(poolId, req.nodeId, now)
    if (cached !== undefined && !needsRenewal(cached, now)) {
      this.stats.answeredFromCache++
      return { kind: 'certificate', cert: cached }
    }
    // many fresh device keys could each ask once: decisions (a pool-store write and a signature) share one budget
    if (!this.decisions.take(now)) return { kind: 'rate-limited' }
    let outcome
    try {
      outcome = handleCertRequest(this.c.home, req.bytes, now)
    } catch (err) {
      if (!(err instanceof MeshError)) throw err
      this.warner.warn(`decide:${key}`, now, { pool: poolId, node: req.nodeId, err: err.message }, 'could not decide a certificate request')
      return { kind: 'undecided', reason: err.message }
    }
    const d = outcome.decision
    if (d.kind === 'issue') {
      this.stats.issued++
      this.waiting.delete(key)
      this.answers.set(key, d.cert)
      this.c.log.info({ pool: poolId, node: req.nodeId, name: req.name, serial: d.cert.serial }, 'issued a member certificate')
      return { kind: 'certificate', cert: d.cert }
    }
    if (d.kind === 'pending') {
      this.warner.warn(`pending:${key}`, now, { pool: poolId, node: req.nodeId, name: req.name },
        `certificate request from ${req.name} awaits approval: run \`mesh pool-approve ${req.nodeId}\``)
      return { kind: 'pending' }
    }
    this.stats.refused[d.reason] = (this.stats.refused[d.reason] ?? 0) + 1
    this.warner.warn(`refused:${key}:${d.reason}`, now, { pool: poolId, node: req.nodeId, name: req.name, reason: d.reason },
      'refused a certificate request')
    return { kind: 'refused', reason: d.reason }
  }

  /**
   * Send a request for each pool still waiting for its certificate now, whatever the backoff says
   * (a bootstrap peer just connected: ask it while the connection is fresh).
   */
  retryNow (): void {
    for (const poolId of this.backoff.keys()) this.backoff.set(poolId, { attempt: 0, nextAt: 0 })
    this.tick()
  }

  /** Whether some pool waits for its first certificate. */
  waitingForCertificate (): boolean {
    return this.c.pools.all().some((p) => p.cert === undefined && !p.isAdmin)
  }

  /** A certificate the pool store already holds for this node (issued earlier, or by `mesh pool-approve`). */
  private issuedOnDisk (poolId: string, nodeId: string, now: number): MemberCert | undefined {
    const pool = this.c.pools.get(poolId)
    if (pool === undefined || pool.record.role !== 'admin') return undefined
    const entry = pool.record.members.find((m) => m.nodeId === nodeId)
    if (entry === undefined || entry.notAfter <= now) return undefined
    return decodeMemberCert(recordBytes(entry.certificate, 'member certificate'))
  }

  /** After a pool-approve (the directory was just re-read): send the new certificate to each request we held. */
  private sendApproved (): void {
    const now = this.c.clock()
    for (const [key, w] of this.waiting) {
      const record = this.c.pools.get(w.poolId)?.record
      if (record?.role !== 'admin' || record.rejectedNodeIds.includes(w.nodeId)) { this.waiting.delete(key); continue }
      const approved = this.issuedOnDisk(w.poolId, w.nodeId, now)
      if (approved === undefined) continue
      this.waiting.delete(key)
      this.stats.issued++
      this.c.log.info({ pool: w.poolId, node: w.nodeId, serial: approved.serial }, 'sending an approved certificate')
      this.respond(w.poolId, { cert: approved, to: w.to })
    }
  }

  private respond (poolId: string, a: Answer): void {
    this.answers.set(`${poolId}/${a.cert.nodeId}`, a.cert)
    // multicast, and straight back to the socket the request came from, in case multicast is blocked
    this.c.beacons.send(poolId, { type: 'cert-response', target: a.cert.devicePublicKey, cert: a.cert.bytes }, [{ host: a.to.address, port: a.to.port }])
  }
}
