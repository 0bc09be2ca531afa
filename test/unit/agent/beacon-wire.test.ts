import { describe, expect, it } from 'vitest'
import { ed25519Signer } from '../../../src/agent/beacon/signing.js'
import { verifySignature } from '../../../src/pool/keys.js'
import { BeaconSequence, BeaconTooLargeError, MAX_BEACON_BYTES, decodeBeacon, encodeBeacon, encodeUnsigned, type Beacon } from '../../../src/agent/beacon/wire.js'

// fixed keys so the bytes below never change: the wire format is protocol
const seed = Uint8Array.from(Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'))
const pub = Uint8Array.from(Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex'))
const poolId = Uint8Array.from(Buffer.alloc(32, 0xab))
const signer = ed25519Signer(seed, pub)

const announce: Beacon = {
  type: 'announce', poolId, sender: pub, seq: 1_700_000_000_000_000, timestampMs: 1_700_000_000_000,
  cert: Uint8Array.of(1, 2, 3), capabilities: ['infer'], listenAddrs: ['/ip4/10.0.0.1/tcp/4001']
}

describe('beacon wire format v1', () => {
  it('encodes an announce to the golden bytes', () => {
    expect(Buffer.from(encodeUnsigned(announce)).toString('hex')).toBe(
      '4d420101' + 'ab'.repeat(32) + Buffer.from(pub).toString('hex') +
      '00060a24181e4000' + '0000018bcfe56800' + '0024' +
      '0003010203' + '0105696e666572' + '0116' + Buffer.from('/ip4/10.0.0.1/tcp/4001').toString('hex'))
  })

  it('signs deterministically (RFC 8032) and verifies', () => {
    const bytes = encodeBeacon(announce, signer.sign)
    const again = encodeBeacon(announce, signer.sign)
    expect(Buffer.from(bytes).equals(again)).toBe(true)
    const d = decodeBeacon(bytes)
    if (typeof d === 'string') throw new Error(d)
    expect(d.beacon).toEqual(announce)
    expect(verifySignature(d.signature, d.signed, pub)).toBe(true)
    // RFC 8032 test 1: the empty message
    expect(Buffer.from(signer.sign(new Uint8Array())).toString('hex').slice(0, 16)).toBe('e5564300c360ac72')
  })

  it('round-trips cert-request and cert-response', () => {
    const req: Beacon = { type: 'cert-request', poolId, sender: pub, seq: 5, timestampMs: 6, request: Uint8Array.of(9, 9) }
    const res: Beacon = { type: 'cert-response', poolId, sender: pub, seq: 7, timestampMs: 8, target: Uint8Array.from(Buffer.alloc(32, 1)), cert: Uint8Array.of(4) }
    for (const b of [req, res]) {
      const d = decodeBeacon(encodeBeacon(b, signer.sign))
      if (typeof d === 'string') throw new Error(d)
      expect(d.beacon).toEqual(b)
    }
  })

  it('keeps a cert-response with a 228-byte certificate far under 1200 bytes', () => {
    const res: Beacon = { type: 'cert-response', poolId, sender: pub, seq: 7, timestampMs: 8, target: pub, cert: new Uint8Array(228) }
    expect(encodeBeacon(res, signer.sign).length).toBeLessThan(MAX_BEACON_BYTES)
    expect(() => encodeUnsigned({ ...res, cert: new Uint8Array(1100) })).toThrow(BeaconTooLargeError)
  })

  it('names what is wrong with bad bytes', () => {
    const good = encodeBeacon(announce, signer.sign)
    expect(decodeBeacon(new Uint8Array(65536))).toBe('oversized')
    expect(decodeBeacon(good.subarray(0, 100))).toBe('truncated')
    const flip = (i: number, v: number): Uint8Array => { const b = Uint8Array.from(good); b[i] = v; return b }
    expect(decodeBeacon(flip(0, 0))).toBe('bad-magic')
    expect(decodeBeacon(flip(2, 2))).toBe('bad-version')
    expect(decodeBeacon(flip(3, 9))).toBe('unknown-type')
    expect(decodeBeacon(flip(85, 0xff))).toBe('malformed') // body length disagrees with the size
    expect(decodeBeacon(flip(68, 0xff))).toBe('malformed') // sequence above 2^53
    expect(decodeBeacon(Uint8Array.from([...good, 0]))).toBe('malformed')
    // a capability with a control character
    const cap = good.indexOf(0x69) // 'i' of "infer"
    expect(decodeBeacon(flip(cap, 0x01))).toBe('malformed')
  })

  it('numbers beacons so a restarted agent continues above its last run', () => {
    const a = new BeaconSequence(1000)
    const first = a.take(); a.take()
    expect(a.take()).toBe(first + 2)
    expect(new BeaconSequence(1001).take()).toBeGreaterThan(first + 999)
  })
})
