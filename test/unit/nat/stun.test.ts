/**
 * The STUN codec (src/nat/stun.ts): RFC 5769's sample response decodes to its mapped address,
 * our own encodings round-trip with golden bytes, and hostile datagrams (random bytes, truncated,
 * bit-flipped and extended real messages, oversized ones) decode to a named drop reason, never an
 * exception and never a wrong address. MESH_FUZZ_PACKETS sets the count, MESH_FUZZ_SEED the seed.
 */
import { describe, expect, it } from 'vitest'
import { decodeStun, encodeBindingRequest, encodeBindingResponse, MAX_STUN_BYTES, type StunDropReason } from '../../../src/nat/stun.js'
import { random } from '../quant-random.js'

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'))

// RFC 5769 section 2.2: sample IPv4 response (SOFTWARE, XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT)
const RFC5769_RESPONSE = hex(`
  0101003c 2112a442 b7e7a701 bc34d686 fa87dfae
  8022000b 74657374 20766563 746f7220
  00200008 0001a147 e112a643
  00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
  80280004 c07d4c96`)

const TX = hex('b7e7a701bc34d686fa87dfae')

describe('STUN codec', () => {
  it('decodes RFC 5769\'s sample response: 192.0.2.1:32853, unknown attributes skipped', () => {
    const d = decodeStun(RFC5769_RESPONSE)
    expect(d).toEqual({ ok: true, message: { kind: 'binding-response', txId: TX, mapped: { address: '192.0.2.1', port: 32853 }, other: undefined } })
  })

  it('encodes a Binding request and response as golden bytes, and decodes them back', () => {
    expect(Buffer.from(encodeBindingRequest(TX)).toString('hex')).toBe('000100002112a442b7e7a701bc34d686fa87dfae')
    const res = encodeBindingResponse(TX, { address: '192.0.2.1', port: 32853 }, { address: '11.0.0.2', port: 3479 })
    expect(Buffer.from(res).toString('hex')).toBe('010100182112a442b7e7a701bc34d686fa87dfae' + '002000080001a147e112a643' + '802c000800010d970b000002')
    expect(decodeStun(res)).toEqual({ ok: true, message: { kind: 'binding-response', txId: TX, mapped: { address: '192.0.2.1', port: 32853 }, other: { address: '11.0.0.2', port: 3479 } } })
    expect(decodeStun(encodeBindingRequest(TX))).toEqual({ ok: true, message: { kind: 'binding-request', txId: TX } })
  })

  it('names what is wrong with broken datagrams', () => {
    const good = encodeBindingResponse(TX, { address: '203.0.113.9', port: 4000 })
    const cases: Array<[string, Uint8Array, StunDropReason]> = [
      ['oversized', new Uint8Array(MAX_STUN_BYTES + 1), 'oversized'],
      ['19 bytes', good.subarray(0, 19), 'truncated'],
      ['declares more than it holds', good.subarray(0, 28), 'truncated'],
      ['no magic cookie', Uint8Array.from(good, (b, i) => i === 4 ? 0 : b), 'not-stun'],
      ['top bits set (RTP, DTLS…)', Uint8Array.from(good, (b, i) => i === 0 ? 0x80 : b), 'not-stun'],
      ['length not a multiple of 4', Uint8Array.from(good, (b, i) => i === 3 ? 11 : b), 'bad-length'],
      ['trailing bytes', Uint8Array.from([...good, 0, 0, 0, 0]), 'bad-length'],
      ['an error response', Uint8Array.from(good, (b, i) => i === 1 ? 0x11 : b), 'unsupported-type'],
      ['attribute overruns', Uint8Array.from(good, (b, i) => i === 23 ? 200 : b), 'bad-attribute'],
      ['unknown family', Uint8Array.from(good, (b, i) => i === 25 ? 7 : b), 'bad-attribute'],
      ['response without an address', Uint8Array.from([0x01, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42, ...TX]), 'no-address']
    ]
    for (const [what, packet, reason] of cases) expect(decodeStun(packet), what).toEqual({ ok: false, reason })
  })

  const PACKETS = Number(process.env.MESH_FUZZ_PACKETS ?? 20_000)
  it(`survives ${PACKETS} hostile datagrams: never throws, every result a message or a named drop`, () => {
    const seed = Number(process.env.MESH_FUZZ_SEED ?? Date.now() % 1e9)
    const rnd = random(seed)
    const int = (n: number): number => Math.floor(rnd() * n)
    const valid = [RFC5769_RESPONSE, encodeBindingRequest(TX), encodeBindingResponse(TX, { address: '11.0.0.10', port: 40000 }, { address: '11.0.0.2', port: 3479 })]
    const reasons = new Map<string, number>()
    let accepted = 0
    for (let n = 0; n < PACKETS; n++) {
      let p: Uint8Array
      const base = valid[int(valid.length)] as Uint8Array
      switch (int(5)) {
        case 0: p = Uint8Array.from({ length: int(80) }, () => int(256)); break // noise
        case 1: p = base.subarray(0, int(base.length)); break // truncated
        case 2: p = Uint8Array.from(base); for (let k = 0, m = 1 + int(4); k < m; k++) p[int(p.length)] ^= 1 << int(8); break // bit flips
        case 3: p = Uint8Array.from([...base, ...Array.from({ length: 1 + int(600) }, () => int(256))]); break // extended, often oversized
        default: { // a well-formed header around random attributes
          const body = Uint8Array.from({ length: 4 * int(20) }, () => int(256))
          p = Uint8Array.from([0x01, 0x01, body.length >> 8, body.length & 255, 0x21, 0x12, 0xa4, 0x42, ...TX, ...body])
        }
      }
      const d = decodeStun(p)
      if (d.ok) {
        accepted++
        expect(d.message.txId).toHaveLength(12)
        if (d.message.kind === 'binding-response') expect(d.message.mapped.address).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
      } else reasons.set(d.reason, (reasons.get(d.reason) ?? 0) + 1)
    }
    const dropped = [...reasons.values()].reduce((a, b) => a + b, 0)
    expect(accepted + dropped, `seed ${seed}`).toBe(PACKETS)
    // every kind of damage was met, so each path of the decoder ran
    expect([...reasons.keys()].sort(), `seed ${seed}`).toEqual(expect.arrayContaining(['bad-attribute', 'bad-length', 'not-stun', 'oversized', 'truncated']))
  })
})
