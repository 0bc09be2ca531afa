import { describe, expect, it } from 'vitest'
import { initialEpoch, onLocalRing, onPeerEpoch, type EpochState } from '../../../src/ring/epoch.js'

describe('epochs', () => {
  it('each new ring bumps the epoch; the same ring does not', () => {
    const a = onLocalRing(initialEpoch, 'h1')
    expect(a).toEqual({ epoch: 1, hash: 'h1', highestSeen: 0 })
    expect(onLocalRing(a, 'h1')).toBe(a)
    expect(onLocalRing(a, 'h2').epoch).toBe(2)
  })

  it('a new ring starts above any epoch a peer reported', () => {
    const s = onPeerEpoch(onLocalRing(initialEpoch, 'h1'), 9, 'other')
    expect(s.epoch).toBe(1)
    expect(onLocalRing(s, 'h2').epoch).toBe(10)
  })

  it('a peer with our ring and a higher epoch wins; a lower one changes nothing', () => {
    const s = onLocalRing(initialEpoch, 'h1')
    expect(onPeerEpoch(s, 4, 'h1').epoch).toBe(4)
    const high = onPeerEpoch(s, 4, 'h1')
    expect(onPeerEpoch(high, 2, 'h1')).toBe(high)
  })

  it('members that see the same changes in different orders settle on one epoch', () => {
    // A and B share ring h1 at epoch 5; C joins, starting from nothing
    let a: EpochState = { epoch: 5, hash: 'h1', highestSeen: 5 }
    let b: EpochState = { ...a }
    let c = onLocalRing(initialEpoch, 'hC') // C alone
    c = onPeerEpoch(c, 5, 'h1'); c = onLocalRing(c, 'hAC') // C hears A first
    c = onPeerEpoch(c, 5, 'h1'); c = onLocalRing(c, 'h3') // then B: full ring
    a = onLocalRing(a, 'h3'); b = onLocalRing(b, 'h3') // A and B see C
    // heartbeats cross until nothing changes
    for (let i = 0; i < 3; i++) {
      for (const peer of [a, b, c]) { a = onPeerEpoch(a, peer.epoch, peer.hash); b = onPeerEpoch(b, peer.epoch, peer.hash); c = onPeerEpoch(c, peer.epoch, peer.hash) }
    }
    expect(new Set([a.epoch, b.epoch, c.epoch]).size).toBe(1)
    expect(a.epoch).toBeGreaterThan(5)
  })
})
