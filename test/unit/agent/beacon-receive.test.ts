import crypto from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { receiveBeacon, type Checked, type PoolTrustView, type ReceiveContext } from '../../../src/agent/beacon/receive.js'
import { ReplayGuard } from '../../../src/agent/beacon/replay.js'
import { ed25519Signer, type Signer } from '../../../src/agent/beacon/signing.js'
import { verifySignature } from '../../../src/pool/keys.js'
import { encodeBeacon, type Beacon } from '../../../src/agent/beacon/wire.js'

function newSigner (): Signer {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519')
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32)
  return ed25519Signer(new Uint8Array(seed), new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)))
}

// The pipeline is under test here; certificates are src/pool's job, so a stand-in "certificate"
// is just the subject's public key prefixed with 0xCE (and anything else is refused).
function check (b: Uint8Array, tag: number, key: Uint8Array): Checked<string> {
  if (b[0] !== tag || b.length !== 33) return { ok: false, reason: 'malformed' }
  if (!Buffer.from(b.subarray(1)).equals(key)) return { ok: false, reason: 'other key', wrongKey: true }
  return { ok: true, value: 'checked', publicKey: b.subarray(1) }
}
const view = (isAdmin: boolean): PoolTrustView<string, string> => ({
  isAdmin,
  checkCert: (b, key) => check(b, 0xce, key),
  checkRequest: (b, key) => check(b, 0x5e, key)
})
const certOf = (s: Signer): Uint8Array => Uint8Array.from([0xce, ...s.publicKey])

const me = newSigner(); const peer = newSigner()
const poolA = Uint8Array.from(Buffer.alloc(32, 0xa))
const now = 1_800_000_000_000
function ctx (isAdmin = false): ReceiveContext<string, string> {
  return { self: me.publicKey, pools: new Map([[Buffer.from(poolA).toString('hex'), view(isAdmin)]]), now, maxSkewMs: 30_000, replay: new ReplayGuard(), verify: verifySignature }
}
let seq = 100
function announce (from: Signer, over: Partial<Beacon> = {}): Beacon {
  return { type: 'announce', poolId: poolA, sender: from.publicKey, seq: seq++, timestampMs: now, cert: certOf(from), capabilities: [], listenAddrs: [], ...over } as Beacon
}

describe('beacon receive pipeline', () => {
  it('accepts a signed announce with a valid certificate', () => {
    const r = receiveBeacon(encodeBeacon(announce(peer), peer.sign), ctx())
    expect(r.ok && r.accepted.type).toBe('announce')
  })

  it('drops for each reason, cheapest first', () => {
    const c = ctx()
    const reason = (b: Uint8Array): string => { const r = receiveBeacon(b, c); return r.ok ? 'accepted' : r.reason }
    expect(reason(encodeBeacon(announce(me), me.sign))).toBe('own')
    expect(reason(encodeBeacon(announce(peer, { poolId: Uint8Array.from(Buffer.alloc(32, 0xb)) }), peer.sign))).toBe('other-pool')
    expect(reason(encodeBeacon(announce(peer, { timestampMs: now - 30_001 }), peer.sign))).toBe('stale')
    expect(reason(encodeBeacon(announce(peer, { timestampMs: now + 30_001 }), peer.sign))).toBe('future')
    expect(reason(encodeBeacon(announce(peer), me.sign))).toBe('bad-signature')
    expect(reason(encodeBeacon(announce(peer, { cert: Uint8Array.of(1) } as Partial<Beacon>), peer.sign))).toBe('bad-certificate')
    expect(reason(encodeBeacon(announce(peer, { cert: certOf(me) } as Partial<Beacon>), peer.sign))).toBe('key-mismatch')
    const req: Beacon = { type: 'cert-request', poolId: poolA, sender: peer.publicKey, seq: seq++, timestampMs: now, request: Uint8Array.from([0x5e, ...peer.publicKey]) }
    expect(reason(encodeBeacon(req, peer.sign))).toBe('not-admin')
    const res: Beacon = { type: 'cert-response', poolId: poolA, sender: peer.publicKey, seq: seq++, timestampMs: now, target: peer.publicKey, cert: certOf(peer) }
    expect(reason(encodeBeacon(res, peer.sign))).toBe('not-for-us')
  })

  it('counts a packet heard twice once, and refuses replays', () => {
    const c = ctx()
    const first = encodeBeacon(announce(peer), peer.sign)
    expect(receiveBeacon(first, c).ok).toBe(true)
    expect(receiveBeacon(first, c)).toEqual({ ok: false, reason: 'duplicate' })
    for (let i = 0; i < 70; i++) expect(receiveBeacon(encodeBeacon(announce(peer), peer.sign), c).ok).toBe(true)
    expect(receiveBeacon(first, c)).toEqual({ ok: false, reason: 'replay' })
  })

  it('does not let a forged packet with a huge sequence number lock out the real sender', () => {
    const c = ctx()
    const forged = encodeBeacon(announce(peer, { seq: 2 ** 52 }), me.sign)
    expect(receiveBeacon(forged, c)).toEqual({ ok: false, reason: 'bad-signature' })
    expect(receiveBeacon(encodeBeacon(announce(peer), peer.sign), c).ok).toBe(true)
  })

  it('admin accepts a request; member accepts a response meant for it', () => {
    const req: Beacon = { type: 'cert-request', poolId: poolA, sender: peer.publicKey, seq: seq++, timestampMs: now, request: Uint8Array.from([0x5e, ...peer.publicKey]) }
    const r = receiveBeacon(encodeBeacon(req, peer.sign), ctx(true))
    expect(r.ok && r.accepted.type).toBe('cert-request')
    const stolen: Beacon = { ...req, seq: seq++, request: Uint8Array.from([0x5e, ...me.publicKey]) }
    const r2 = receiveBeacon(encodeBeacon(stolen, peer.sign), ctx(true))
    expect(r2.ok ? 'accepted' : r2.reason).toBe('key-mismatch')
    const res: Beacon = { type: 'cert-response', poolId: poolA, sender: peer.publicKey, seq: seq++, timestampMs: now, target: me.publicKey, cert: certOf(me) }
    const r3 = receiveBeacon(encodeBeacon(res, peer.sign), ctx())
    expect(r3.ok && r3.accepted.type).toBe('cert-response')
  })
})
