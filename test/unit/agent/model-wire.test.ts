import { describe, expect, it } from 'vitest'
import { decodeModelAnswer, decodeModelRequest, encodeModelAnswer, encodeModelRequest, fitsConnection, MAX_MODEL_FILE_BYTES } from '../../../src/agent/net/model-wire.js'

const SHA = '08b75d02170a95193f595961eec988e11e103fbea60ba6c607570550dc859150'

describe('/mesh/model/1.0.0 wire', () => {
  it('encodes a request and an answer as fixed bytes', () => {
    expect(Buffer.from(encodeModelRequest(SHA)).toString('hex')).toBe(`01${SHA}`)
    expect(Buffer.from(encodeModelAnswer({ kind: 'file', size: 0x0102030405 })).toString('hex')).toBe('000000000102030405')
    expect(Buffer.from(encodeModelAnswer({ kind: 'not-served' })).toString('hex')).toBe('010000000000000000')
    expect(decodeModelRequest(encodeModelRequest(SHA))).toBe(SHA)
    expect(decodeModelAnswer(encodeModelAnswer({ kind: 'file', size: 1234 }))).toEqual({ kind: 'file', size: 1234 })
    expect(Buffer.from(encodeModelAnswer({ kind: 'too-large', size: 0x0102030405 })).toString('hex')).toBe('020000000102030405')
    expect(decodeModelAnswer(encodeModelAnswer({ kind: 'too-large', size: 99 }))).toEqual({ kind: 'too-large', size: 99 })
  })

  it('a checkpoint crosses a relayed connection only within half its byte allowance; a direct one always', () => {
    const table: Array<[number, { bytes?: bigint } | undefined, boolean]> = [
      [2 ** 40, undefined, true], // direct
      [2 ** 40, {}, true], // a relay that caps only time
      [512 * 2 ** 20, { bytes: 2n ** 30n }, true], // mesh-relay's default 1 GiB
      [512 * 2 ** 20 + 1, { bytes: 2n ** 30n }, false],
      [1, { bytes: 131_072n }, true], // libp2p's default 128 KiB
      [65_537, { bytes: 131_072n }, false]
    ]
    for (const [size, limits, fits] of table) expect(fitsConnection(size, limits)).toBe(fits)
  })

  it('rejects malformed requests and answers', () => {
    expect(decodeModelRequest(new Uint8Array(32))).toBeNull() // short
    expect(decodeModelRequest(Buffer.from(`02${SHA}`, 'hex'))).toBeNull() // unknown version
    expect(decodeModelAnswer(new Uint8Array(8))).toBeNull()
    expect(decodeModelAnswer(Buffer.from('030000000000000001', 'hex'))).toBeNull() // unknown status
    expect(decodeModelAnswer(Buffer.from('020000000000000000', 'hex'))).toBeNull() // "too large" without a size
    expect(decodeModelAnswer(Buffer.from('000000000000000000', 'hex'))).toBeNull() // an empty file is no checkpoint
    expect(decodeModelAnswer(Buffer.from('010000000000000001', 'hex'))).toBeNull() // "not served" with a size
    const huge = new Uint8Array(9); new DataView(huge.buffer).setBigUint64(1, BigInt(MAX_MODEL_FILE_BYTES) + 1n)
    expect(decodeModelAnswer(huge)).toBeNull()
    expect(() => encodeModelRequest('xyz')).toThrow(RangeError)
  })
})
