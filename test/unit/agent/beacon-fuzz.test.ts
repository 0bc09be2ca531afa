/**
 * Fuzz the beacon receive path with hostile and broken packets: random bytes, truncated and
 * bit-flipped real beacons, wrong versions, forged signatures and certificates, replays, stale and
 * future timestamps, 64 KiB datagrams and valid beacons of another pool. Real keys, real pool
 * certificates (src/pool), the real pipeline. Every packet must end as exactly one accept or one
 * counted drop, nothing may throw, and nothing but a genuine, first-seen beacon may be accepted.
 * MESH_FUZZ_PACKETS sets the count (npm test runs a short one; the full run uses 100000).
 */
import { describe, expect, it } from 'vitest'
import { emptyDropCounts, receiveBeacon, type ReceiveContext } from '../../../src/agent/beacon/receive.js'
import { ReplayGuard } from '../../../src/agent/beacon/replay.js'
import { ed25519Signer, type Signer } from '../../../src/agent/beacon/signing.js'
import { verifySignature } from '../../../src/pool/keys.js'
import { encodeBeacon, type Beacon, type BeaconBody } from '../../../src/agent/beacon/wire.js'
import { PoolDirectory } from '../../../src/agent/pools.js'
import {
  certForRequest, createCertRequest, createPool, initDevice, loadDevice, publicKeyOf, readPoolRecord, readRootKey, type Device, type MemberCert
} from '../../../src/pool/index.js'
import { fixedDevice, tempDirs } from '../../helpers/pool-fixtures.js'

const PACKETS = Number(process.env.MESH_FUZZ_PACKETS ?? 5000)
const tmp = tempDirs('mesh-fuzz-')

/** mulberry32: a seeded PRNG so a failure can be replayed with MESH_FUZZ_SEED */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function issue (home: string, poolId: string, device: Device, now: number): MemberCert {
  const rootPrivateKey = readRootKey(home, readPoolRecord(home, poolId))
  const req = createCertRequest(device, poolId, now)
  return certForRequest(req, { poolId, rootPrivateKey, rootPublicKey: publicKeyOf(rootPrivateKey) }, now)
}
const signerOf = (d: Device): Signer => ed25519Signer(d.privateKey, d.publicKey)

describe('beacon receive path under fuzzing', () => {
  it(`survives ${PACKETS} hostile packets: no crash, no forgery accepted, every drop counted`, () => {
    const seed = Number(process.env.MESH_FUZZ_SEED ?? Date.now() % 1e9)
    const rnd = prng(seed)
    const int = (n: number): number => Math.floor(rnd() * n)
    const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256))
    const now = Date.now()

    // the receiver: admin of pool P; a real member B; an attacker X without certificate; pool Q elsewhere
    const homeA = tmp(); initDevice(homeA, { networkId: 'lan', name: 'receiver' })
    const poolP = createPool(homeA, { name: 'P', policy: 'token', now }).record.poolId
    const homeQ = tmp(); initDevice(homeQ, { networkId: 'lan', name: 'elsewhere' })
    const poolQ = createPool(homeQ, { name: 'Q', policy: 'token', now }).record.poolId
    const A = loadDevice(homeA); const B = fixedDevice(7, 'member'); const X = fixedDevice(9, 'attacker'); const C = fixedDevice(11, 'q-member')
    const certB = issue(homeA, poolP, B, now)
    const certA = issue(homeA, poolP, A, now)
    const certXinQ = issue(homeQ, poolQ, X, now)
    const certC = issue(homeQ, poolQ, C, now)
    const sB = signerOf(B); const sX = signerOf(X); const sC = signerOf(C)

    const pools = new PoolDirectory(homeA, () => {}); pools.refresh()
    const ctx: ReceiveContext<MemberCert, unknown> = {
      self: A.publicKey, pools: pools.views(), now, maxSkewMs: 30_000, replay: new ReplayGuard(), verify: verifySignature
    }

    // signing requests with @noble is slow; a few serve (the beacons around them are all distinct)
    const requestsB = Array.from({ length: 8 }, () => createCertRequest(B, poolP, now).bytes)
    const requestX = createCertRequest(X, poolP, now).bytes
    let seq = now * 1000
    const P = Buffer.from(poolP, 'hex'); const Q = Buffer.from(poolQ, 'hex')
    const mk = (body: BeaconBody, over: Partial<Beacon> = {}, signer = sB): Uint8Array =>
      encodeBeacon({ ...body, poolId: P, sender: signer.publicKey, seq: seq++, timestampMs: now - int(1000), ...over } as Beacon, signer.sign)
    const announceB = (): BeaconBody => ({ type: 'announce', cert: certB.bytes, capabilities: ['infer'], listenAddrs: ['/ip4/10.0.0.2/tcp/4001'] })
    const legitBodies = [
      announceB,
      (): BeaconBody => ({ type: 'cert-request', request: requestsB[int(requestsB.length)] as Uint8Array }),
      (): BeaconBody => ({ type: 'cert-response', target: A.publicKey, cert: certA.bytes })
    ]

    const genuine = new Set<string>() // hex of every genuine packet made
    const captured: Uint8Array[] = []
    const legit = (): Uint8Array => {
      const p = mk((legitBodies[int(legitBodies.length)] as () => BeaconBody)())
      genuine.add(Buffer.from(p).toString('hex')); captured.push(p)
      if (captured.length > 200) captured.shift()
      return p
    }
    const someCaptured = (): Uint8Array => captured.length > 0 ? captured[int(captured.length)] as Uint8Array : legit()

    const generators: Array<[string, () => Uint8Array]> = [
      ['genuine', legit],
      ['random bytes', () => bytes(int(1500))],
      ['random after a valid prefix', () => { const p = someCaptured(); const cut = int(p.length); return Uint8Array.from([...p.subarray(0, cut), ...bytes(int(300))]) }],
      ['truncated', () => { const p = someCaptured(); return p.subarray(0, int(p.length)) }],
      ['bit-flipped', () => { const p = Uint8Array.from(someCaptured()); for (let i = 1 + int(4); i > 0; i--) { const at = int(p.length); p[at] = (p[at] as number) ^ (1 << int(8)) } return p }],
      ['wrong version', () => { const p = Uint8Array.from(someCaptured()); p[2] = 2 + int(254); return p }],
      ['unknown type', () => { const p = Uint8Array.from(someCaptured()); p[3] = 4 + int(252); return p }],
      ['forged signature', () => { const p = Uint8Array.from(someCaptured()); p.set(bytes(64), p.length - 64); return p }],
      ['signed by an impostor as B', () => mk(announceB(), { sender: B.publicKey }, { publicKey: B.publicKey, sign: sX.sign })],
      ['B\'s certificate, X\'s key', () => mk(announceB(), {}, sX)],
      ['certificate of another pool', () => mk({ type: 'announce', cert: certXinQ.bytes, capabilities: [], listenAddrs: [] }, {}, sX)],
      ['response signed by a non-root key', () => mk({ type: 'cert-response', target: A.publicKey, cert: certXinQ.bytes }, {}, sX)],
      ['request for another device', () => mk({ type: 'cert-request', request: requestX })],
      ['replay', someCaptured],
      ['stale', () => mk(announceB(), { timestampMs: now - 30_001 - int(1e9) })],
      ['future', () => mk(announceB(), { timestampMs: now + 30_001 + int(1e9) })],
      ['64 KiB', () => bytes(65_507)],
      ['other pool', () => mk({ type: 'announce', cert: certC.bytes, capabilities: [], listenAddrs: [] }, { poolId: Q }, sC)],
      ['own packet', () => mk({ type: 'announce', cert: certA.bytes, capabilities: [], listenAddrs: [] }, {}, signerOf(A))]
    ]

    const t0 = performance.now()
    const drops = emptyDropCounts()
    const acceptedKeys = new Set<string>()
    let accepted = 0; let forgeries = 0
    const crashes: string[] = []
    for (let i = 0; i < PACKETS; i++) {
      const [kind, gen] = generators[int(generators.length)] as [string, () => Uint8Array]
      const packet = gen()
      try {
        const r = receiveBeacon(packet, ctx)
        if (!r.ok) { drops[r.reason]++; continue }
        accepted++
        const key = Buffer.from(packet).toString('hex')
        if (!genuine.has(key) || acceptedKeys.has(key)) forgeries++
        acceptedKeys.add(key)
      } catch (err) {
        crashes.push(`${kind}: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    const dropped = Object.values(drops).reduce((a, b) => a + b, 0)
    console.log(`fuzz: ${PACKETS} packets in ${Math.round(performance.now() - t0)} ms (seed ${seed}): ${accepted} genuine accepted, ${dropped} dropped ${JSON.stringify(Object.fromEntries(Object.entries(drops).filter(([, n]) => n > 0)))}`)
    expect(crashes.slice(0, 5)).toEqual([])
    expect(forgeries).toBe(0)
    expect(accepted + dropped).toBe(PACKETS)
    expect(accepted).toBeGreaterThan(0)
    for (const reason of ['oversized', 'truncated', 'bad-version', 'malformed', 'bad-signature', 'bad-certificate', 'key-mismatch', 'stale', 'future', 'other-pool', 'own'] as const) {
      if (PACKETS >= 2000) expect(drops[reason], reason).toBeGreaterThan(0)
    }
  }, 600_000)
})
