import { describe, expect, it } from 'vitest'
import type { ModelConfig } from '../../src/inference/config.js'
import { decodeJobMessage, encodeJobMessage, type JobOpen } from '../../src/inference/job/messages.js'
import { InputFeed, refusalOf } from '../../src/inference/job/member.js'
import { evenRanges, JobPlanError, planJob } from '../../src/inference/job/plan.js'
import { llama2cSharding } from '../../src/inference/shard.js'

// stories260K's shape: 4 kv heads (8 query heads), 172 FFN units
const cfg: ModelConfig = { dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true }

describe('planJob', () => {
  it('gives every unit to exactly one member, in ring order', () => {
    const plan = planJob(llama2cSharding(cfg), evenRanges(['a', 'b', 'c']))
    expect(plan.map((m) => [m.shard.kvHeadStart, m.shard.kvHeadEnd, m.shard.hiddenStart, m.shard.hiddenEnd])).toEqual([[0, 1, 0, 57], [1, 3, 57, 115], [3, 4, 115, 172]])
  })

  it('keeps a member whose share rounds to nothing, with no units', () => {
    const plan = planJob(llama2cSharding(cfg), [{ nodeId: 'a', start: 0, end: 8190 }, { nodeId: 'b', start: 8190, end: 8191 }, { nodeId: 'c', start: 8191, end: 8192 }])
    expect(plan.map((m) => llama2cSharding(cfg).units(m.shard))).toEqual([{ heads: 8, hiddenUnits: 172 }, { heads: 0, hiddenUnits: 0 }, { heads: 0, hiddenUnits: 0 }])
    expect(plan[0].shard).toEqual({ kvHeadStart: 0, kvHeadEnd: 4, hiddenStart: 0, hiddenEnd: 172 })
  })

  it.each([
    [[{ nodeId: 'a', start: 0, end: 4096 }], /end at column 4096/],
    [[{ nodeId: 'a', start: 0, end: 4096 }, { nodeId: 'b', start: 4000, end: 8192 }], /must start at 4096/],
    [[{ nodeId: 'a', start: 0, end: 4096 }, { nodeId: 'a', start: 4096, end: 8192 }], /twice/],
    [[], /at least one/]
  ])('rejects ranges that do not tile the ring: %j', (members, message) => {
    expect(() => planJob(llama2cSharding(cfg), members)).toThrow(JobPlanError)
    expect(() => planJob(llama2cSharding(cfg), members)).toThrow(message)
  })
})

describe('a member checks a job-open', () => {
  const open: JobOpen = { type: 'open', job: 7, poolId: 'a'.repeat(64), epoch: 5, leader: 'L', modelId: 'f'.repeat(64), positions: 10, batch: 1, members: evenRanges(['L', 'me']) }
  it.each([
    ['fits', open, 5, undefined],
    ['a newer epoch (the member has not caught up)', { ...open, epoch: 6 }, 5, undefined],
    ['no ring in the pool', open, undefined, 'not-member'],
    ['this member not in it', { ...open, members: evenRanges(['L', 'x']) }, 5, 'not-member'],
    ['the leader not in it', { ...open, leader: 'x' }, 5, 'bad-plan'],
    ['a stale epoch', { ...open, epoch: 4 }, 5, 'stale-epoch'],
    ['another model', { ...open, modelId: 'e'.repeat(64) }, 5, 'model-mismatch']
  ] as const)('%s', (_what, o, epoch, reason) => {
    expect(refusalOf(o, 'me', 'f'.repeat(64), epoch)?.reason).toBe(reason)
  })

  it('decodes only well-formed messages within the size bound', () => {
    expect(decodeJobMessage(encodeJobMessage(open))).toEqual(open)
    expect(decodeJobMessage(Buffer.from('{"type":"open"}'))).toBeUndefined()
    expect(decodeJobMessage(Buffer.from('not json'))).toBeUndefined()
    expect(decodeJobMessage(Buffer.from(JSON.stringify({ ...open, extra: 1 })))).toBeUndefined()
    expect(decodeJobMessage(Buffer.alloc(70_000, 0x20))).toBeUndefined()
  })
})

describe('the input feed', () => {
  it('takes the leader\'s embedding rows in position order and drops the rest with a reason', async () => {
    const feed = new InputFeed(3)
    expect(feed.push(1, Float32Array.of(1, 2, 3))).toBe('wrong-step')
    expect(feed.push(0, Float32Array.of(1, 2))).toBe('bad-token')
    expect(feed.push(0, Float32Array.of(1, 2, 3, 4))).toBe('bad-token')
    expect(feed.push(0, Float32Array.of(1, Number.NaN, 3))).toBe('bad-token')
    expect(feed.push(0, Float32Array.of(1, 2, Number.POSITIVE_INFINITY))).toBe('bad-token')
    const sent = Float32Array.of(0.5, -1, 2)
    expect(feed.push(0, sent)).toBeNull()
    sent.fill(0) // the plane may reuse its buffer: the feed kept a copy
    expect(await feed.next(1000)).toEqual({ position: 0, rows: Float32Array.of(0.5, -1, 2) })
    const waiting = feed.next(1000)
    feed.end()
    expect(await waiting).toBeNull()
  })

  it('parked, waits past the step timeout; rewound, takes the positions from there again', async () => {
    const feed = new InputFeed(2, 4)
    expect(feed.push(0, Float32Array.of(1, 1, 2, 2))).toBeNull()
    expect((await feed.next(50))?.position).toBe(0)
    feed.park()
    const waiting = feed.next(50)
    await new Promise((resolve) => setTimeout(resolve, 120)) // past the step timeout: still waiting
    expect(feed.rewind(3)).toBe(false) // only 2 positions were fed
    expect(feed.rewind(1)).toBe(true)
    expect(feed.push(2, Float32Array.of(9, 9))).toBe('wrong-step')
    expect(feed.push(1, Float32Array.of(3, 3))).toBeNull()
    expect(await waiting).toEqual({ position: 1, rows: Float32Array.of(3, 3) })
    await expect(feed.next(50)).rejects.toThrow(/no input for position 2/) // no longer parked
  })
})
