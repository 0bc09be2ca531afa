/**
 * mesh-relay's node: libp2p (TCP, Noise, Yamux, identify, ping) with a circuit relay v2 server whose
 * reservations and relayed connections are gated by RelayAdmission, and whose per-connection caps
 * are far above libp2p's (2 min, 128 KiB) so a whole inference job fits. libp2p counts a
 * connection's data limit over both directions together, and enforces its duration in ms although
 * the wire field is seconds (clients then show a 1000× longer limit: harmless, the relay enforces).
 *
 * Exports: RelayLimits, defaultRelayLimits, RelayInit, Relay, startRelay.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Logger } from 'pino'
import { CERT_PROTOCOL, MAX_BUNDLE_BYTES } from '../agent/net/cert-bundle.js'
import { ownPublicAddresses } from '../agent/net/public-addresses.js'
import type { PoolTrust } from '../pool/index.js'
import { RelayAdmission } from './admission.js'

export interface RelayLimits {
  /** longest life of one relayed connection, ms; 0 = no cap */
  readonly durationMs: number
  /** bytes one relayed connection may carry; 0 = no cap */
  readonly dataBytes: number
  /** peers holding a reservation at once (libp2p: 15, too few for a pool) */
  readonly maxReservations: number
}

export function defaultRelayLimits (): RelayLimits {
  // an hour and a GiB: a long generation on a slow member, with its all-reduce traffic, fits easily
  return { durationMs: 60 * 60_000, dataBytes: 1024 * 1024 * 1024, maxReservations: 1024 }
}

export interface RelayInit {
  readonly privateKey: PrivateKey
  /** libp2p listen multiaddrs */
  readonly listen: readonly string[]
  readonly limits: RelayLimits
  /** pools served right now */
  readonly trust: () => readonly PoolTrust[]
  readonly log: Logger
  /** a connected peer must show a valid certificate within this time, or is disconnected */
  readonly admissionTimeoutMs?: number
}

export interface Relay {
  readonly node: Libp2p
  readonly admission: RelayAdmission
  stop: () => Promise<void>
}

// certificates come on their own stream, maybe just after a reservation or connect request
const CERT_WAIT_MS = 3000
const ADMISSION_TIMEOUT_MS = 10_000

export async function startRelay (init: RelayInit): Promise<Relay> {
  const admission = new RelayAdmission(init.trust)
  const admissionTimeoutMs = init.admissionTimeoutMs ?? ADMISSION_TIMEOUT_MS
  const log = init.log
  const capped = init.limits.durationMs > 0 || init.limits.dataBytes > 0
  const node = await createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: [...init.listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: {
      denyInboundRelayReservation: async (peer) => !(await admission.mayReserve(peer.toString(), CERT_WAIT_MS)),
      denyOutboundRelayedConnection: async (source, destination) => !(await admission.mayConnect(source.toString(), destination.toString(), CERT_WAIT_MS))
    },
    services: {
      identify: identify(),
      ping: ping(),
      // bound to a public IP, the relay must say so: members are given what it prints
      publicAddresses: ownPublicAddresses(),
      relay: circuitRelayServer({
        reservations: {
          maxReservations: init.limits.maxReservations,
          // no cap at all makes relayed connections unlimited, so every protocol runs over them
          applyDefaultLimit: capped,
          defaultDurationLimit: init.limits.durationMs,
          defaultDataLimit: BigInt(init.limits.dataBytes)
        }
      })
    }
  })

  await node.handle(CERT_PROTOCOL, async (stream, connection) => {
    const peer = connection.remotePeer.toString()
    try {
      const frame = await lpStream(stream, { maxDataLength: MAX_BUNDLE_BYTES }).read({ signal: AbortSignal.timeout(admissionTimeoutMs) })
      await stream.close()
      const pools = admission.present(peer, frame.subarray(), Date.now())
      log.info({ peer, pools }, pools.length > 0 ? 'peer admitted' : 'peer showed no valid certificate of a served pool')
    } catch (err) {
      admission.count('bad-bundle')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }, { maxInboundStreams: 4 })

  node.addEventListener('connection:open', (e) => {
    const peer = e.detail.remotePeer
    setTimeout(() => {
      if (node.status !== 'started' || node.getConnections(peer).length === 0) return
      if (admission.poolsOf(peer.toString(), Date.now()).length > 0) return
      admission.count('not-admitted')
      log.info({ peer: peer.toString() }, 'peer showed no valid certificate in time; disconnecting')
      void node.hangUp(peer).catch(() => {})
    }, admissionTimeoutMs).unref()
  })
  node.addEventListener('peer:disconnect', (e) => { admission.forget(e.detail.toString()) })
  node.services.relay.addEventListener('relay:reservation', (e) => {
    log.info({ peer: e.detail.addr.toString(), expiry: e.detail.expiry.toISOString() }, 'reservation granted')
  })

  return {
    node,
    admission,
    stop: async () => { await node.stop() }
  }
}
