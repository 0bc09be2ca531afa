import { describe, expect, it } from 'vitest'
import { assignRing, capacityWeights, RING_COLUMNS, ringOrderKey, splitColumns } from '../../../src/ring/assign.js'

const POOL = '602e587a5e549df0335ddddde1d7a73e163116015dfd047d071640f36e74e00a'
const ids = ['12D3KooWA', '12D3KooWB', '12D3KooWC', '12D3KooWD', '12D3KooWE']

describe('splitColumns', () => {
  it.each([
    [[1], [8192]],
    [[1, 1], [4096, 4096]],
    [[1, 1, 1], [2731, 2731, 2730]],
    [[1, 1, 1, 1], [2048, 2048, 2048, 2048]],
    [[1, 3], [2048, 6144]],
    [[2, 1, 1], [4096, 2048, 2048]],
    [[1000, 1], [8184, 8]],
    [[3, 3, 2], [3072, 3072, 2048]]
  ])('weights %j → %j', (weights, expected) => {
    const parts = splitColumns(weights)
    expect(parts).toEqual(expected)
    expect(parts.reduce((a, b) => a + b, 0)).toBe(RING_COLUMNS)
  })

  it('gives every member at least one column, even with an extreme weight', () => {
    expect(splitColumns([1_000_000_000, 1, 1])).toEqual([8190, 1, 1])
  })

  it('rejects weights that are not positive whole numbers', () => {
    expect(() => splitColumns([1, 0])).toThrow(RangeError)
    expect(() => splitColumns([1.5])).toThrow(RangeError)
    expect(() => splitColumns([1], 0)).toThrow(RangeError)
  })

  it('is empty for no members', () => { expect(splitColumns([])).toEqual([]) })
})

describe('assignRing', () => {
  it('orders by sha256 of node id, contiguous ranges covering 0..8192', () => {
    const ring = assignRing(POOL, ids.slice(0, 3).map((nodeId) => ({ nodeId, weight: 1 })), 'even')
    const expectedOrder = ids.slice(0, 3).sort((a, b) => (ringOrderKey(a) < ringOrderKey(b) ? -1 : 1))
    expect(ring.slots.map((s) => s.nodeId)).toEqual(expectedOrder)
    expect(ring.slots.map((s) => [s.position, s.start, s.end])).toEqual([[0, 0, 2731], [1, 2731, 5462], [2, 5462, 8192]])
  })

  it('does not depend on input order, and the hash pins the assignment', () => {
    const a = assignRing(POOL, ids.map((nodeId) => ({ nodeId, weight: 1 })), 'even')
    const b = assignRing(POOL, [...ids].reverse().map((nodeId) => ({ nodeId, weight: 1 })), 'even')
    expect(b).toEqual(a)
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/)
    expect(assignRing(POOL, ids.slice(1).map((nodeId) => ({ nodeId, weight: 1 })), 'even').hash).not.toBe(a.hash)
    expect(assignRing(POOL, ids.map((nodeId) => ({ nodeId, weight: 1 })), 'capacity').hash).not.toBe(a.hash)
    expect(assignRing(POOL.replace('6', '7'), ids.map((nodeId) => ({ nodeId, weight: 1 })), 'even').hash).not.toBe(a.hash)
  })

  it('even mode ignores weights; capacity mode follows them', () => {
    const members = [{ nodeId: ids[0]!, weight: 3 }, { nodeId: ids[1]!, weight: 1 }]
    expect(assignRing(POOL, members, 'even').slots.map((s) => s.end - s.start)).toEqual([4096, 4096])
    const cap = assignRing(POOL, members, 'capacity')
    const sizeOf = (id: string): number => { const s = cap.slots.find((x) => x.nodeId === id)!; return s.end - s.start }
    expect([sizeOf(ids[0]!), sizeOf(ids[1]!)]).toEqual([6144, 2048])
  })

  it('has a known hash for a known ring (protocol: peers compare it)', () => {
    const ring = assignRing(POOL, [{ nodeId: 'a', weight: 1 }, { nodeId: 'b', weight: 1 }], 'even')
    expect(ring.hash).toBe(GOLDEN_HASH)
  })
})

describe('capacityWeights', () => {
  it('uses measured speed when every member measured it, else cores', () => {
    expect(capacityWeights([{ cores: 4, memoryMiB: 1, matmulMflops: 3000 }, { cores: 2, memoryMiB: 1, matmulMflops: 1000 }])).toEqual([3000, 1000])
    expect(capacityWeights([{ cores: 4, memoryMiB: 1, matmulMflops: 3000 }, { cores: 2, memoryMiB: 1, matmulMflops: 0 }])).toEqual([4, 2])
    expect(capacityWeights([{ cores: 0, memoryMiB: 1, matmulMflops: 0 }])).toEqual([1])
  })
})

// independently: printf 'mesh-ring-v1\n<pool>\neven\n8192\n0 b 0 4096\n1 a 4096 8192\n' | sha256sum
const GOLDEN_HASH = '12126be42e9b1d4623dd14a9f5757e5088241b531bcc3f6614fbae33d2237e28'
