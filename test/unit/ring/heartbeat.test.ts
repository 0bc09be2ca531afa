import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { decodeHeartbeat, encodeHeartbeat, MAX_HEARTBEAT_BYTES, verifyHeartbeatSignature, type DecodedHeartbeat, type Heartbeat } from '../../../src/ring/heartbeat.js'

const POOL = '602e587a5e549df0335ddddde1d7a73e163116015dfd047d071640f36e74e00a'
const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(7))
const other = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(8))

const sample: Heartbeat = {
  poolId: POOL,
  publicKey: key.publicKey.raw,
  incarnation: 1_763_900_000_000,
  seq: 42,
  sentAtMs: 1_763_900_042_000,
  status: 'alive',
  epoch: 7,
  ringHash: '12126be42e9b1d4623dd14a9f5757e5088241b531bcc3f6614fbae33d2237e28',
  capacity: { cores: 8, memoryMiB: 16384, matmulMflops: 2700 },
  residentMiB: 412,
  model: 'stories260K',
  addresses: ['/ip4/10.77.0.1/tcp/4002']
}

function decoded (bytes: Uint8Array): DecodedHeartbeat {
  const r = decodeHeartbeat(bytes)
  if (!r.ok) throw new Error(`decode failed: ${r.reason}`)
  return r.value
}

describe('heartbeat wire format', () => {
  it('has golden bytes (ed25519 signatures are deterministic)', async () => {
    const bytes = await encodeHeartbeat(sample, key)
    expect(Buffer.from(bytes).toString('hex')).toBe(GOLDEN)
  })

  it('round-trips, names the sender by its PeerId, and verifies', async () => {
    const d = decoded(await encodeHeartbeat(sample, key))
    expect(d.heartbeat).toEqual(sample)
    expect(d.nodeId).toBe(peerIdFromPrivateKey(key).toString())
    expect(await verifyHeartbeatSignature(d)).toBe(true)
  })

  it('encodes "no ring yet" and a goodbye', async () => {
    const d = decoded(await encodeHeartbeat({ ...sample, ringHash: '', status: 'leaving', addresses: [] }, key))
    expect(d.heartbeat).toMatchObject({ ringHash: '', status: 'leaving', addresses: [] })
  })

  it('rejects a signature by another key, and any flipped byte', async () => {
    const bytes = await encodeHeartbeat(sample, key)
    const forged = await encodeHeartbeat(sample, other) // claims key's public key, signed by other
    expect(await verifyHeartbeatSignature(decoded(forged))).toBe(false)
    for (let i = 0; i < bytes.length; i++) {
      const t = bytes.slice(); t[i] = (t[i] ?? 0) ^ 0x01
      const r = decodeHeartbeat(t)
      if (r.ok) expect(await verifyHeartbeatSignature(r.value), `byte ${i}`).toBe(false)
    }
  })

  it.each<[string, (b: Uint8Array) => Uint8Array, string]>([
    ['oversized', () => new Uint8Array(MAX_HEARTBEAT_BYTES + 1), 'oversized'],
    ['empty', () => new Uint8Array(0), 'truncated'],
    ['cut short', (b) => b.subarray(0, 120), 'truncated'],
    ['unknown version', (b) => { const t = b.slice(); t[0] = 3; return t }, 'bad-version'],
    ['unknown kind', (b) => { const t = b.slice(); t[1] = 9; return t }, 'bad-kind'],
    ['unknown status', (b) => { const t = b.slice(); t[2] = 7; return t }, 'malformed'],
    ['trailing bytes', (b) => { const t = new Uint8Array(b.length + 1); t.set(b.subarray(0, b.length - 64)); t.set(b.subarray(b.length - 64), b.length - 63); return t }, 'malformed'],
    ['u64 beyond 2^53', (b) => { const t = b.slice(); t[67] = 0xff; return t }, 'malformed']
  ])('drops %s bytes with a reason', async (_n, mutate, reason) => {
    const r = decodeHeartbeat(mutate(await encodeHeartbeat(sample, key)))
    expect(r).toEqual({ ok: false, reason })
  })

  it('refuses to encode what the format cannot hold', async () => {
    await expect(encodeHeartbeat({ ...sample, model: 'x'.repeat(65) }, key)).rejects.toThrow(/model/)
    await expect(encodeHeartbeat({ ...sample, addresses: Array(9).fill('/ip4/1.2.3.4/tcp/1') }, key)).rejects.toThrow(/addresses/)
    await expect(encodeHeartbeat({ ...sample, seq: -1 }, key)).rejects.toThrow(/does not fit/)
  })
})

// 246 bytes; checked independently with node:crypto (ed25519 verify of the signature over
// 'mesh-heartbeat-v1' ‖ body, public key of seed 0x07×32)
const GOLDEN =
  '020100602e587a5e549df0335ddddde1d7a73e163116015dfd047d071640f36e74e00aea4a6c63e29c520abef5507b13' +
  '2ec5f9954776aebebe7b92421eea691446d22c0000019ab0a20700000000000000002a0000019ab0a2ab100000000000' +
  '00000712126be42e9b1d4623dd14a9f5757e5088241b531bcc3f6614fbae33d2237e2800080000400000000a8c000001' +
  '9c0b73746f726965733236304b01172f6970342f31302e37372e302e312f7463702f34303032185ef843060d1b4323fa' +
  'f53c24f8c57e6f93a3092733254dfd0ca10c9f1e65c6b01a06ab3481b7ba223d7d4a5d00e9a9a446ae8afe9346bbfbcd' +
  'ec70f6745200'
