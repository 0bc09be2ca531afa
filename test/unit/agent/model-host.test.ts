import { describe, expect, it } from 'vitest'
import { ModelHost, ModelNotReadyError } from '../../../src/agent/inference/models.js'
import { BUNDLED_MODEL, identifyModel } from '../../../src/inference/served.js'
import { shardForColumns, wholeModel } from '../../../src/inference/shard.js'

describe('the shards an agent holds of the model it serves (stories260K)', async () => {
  const served = await identifyModel(BUNDLED_MODEL)
  if (served.format !== 'llama2c') throw new Error('the bundled model is a llama2.c checkpoint')
  const c = served.config
  const half = (i: 0 | 1) => shardForColumns(c, i * 4096, (i + 1) * 4096)

  it('reads only its shard, the embedding and classifier only for a leader; a member reuses a leader\'s copy of the same shard', async () => {
    const host = new ModelHost(() => served, 1)
    const member = await host.lease(half(0), 'member')
    expect(member.model.sharded.weights.wcls).toBeNull()
    expect(member.model.sharded.weights.tokEmb).toBeNull()
    expect(member.model.sharded.weights.layers[0]?.w1.length).toBe(c.dim * (half(0).hiddenEnd - half(0).hiddenStart))
    const leader = await host.lease(half(1), 'leader')
    expect(leader.model.sharded.weights.wcls).not.toBeNull()
    expect(leader.model.sharded.weights.tokEmb?.length).toBe(c.vocabSize * c.dim)
    const asMember = await host.lease(half(1), 'member')
    expect(asMember.model).toBe(leader.model)
    for (const l of [member, leader, asMember]) l.release()
    await host.stop()
  })

  it('after a re-plan, frees the old shard once no job uses it, and keeps the latest one for the next job', async () => {
    const host = new ModelHost(() => served, 1)
    const old = await host.lease(half(0), 'member')
    const next = await host.lease(wholeModel(c), 'member') // the ring shrank to this member alone
    expect(host.loadedShards().map((s) => s.users)).toEqual([1, 1])
    old.release()
    old.release() // twice is once
    expect(host.loadedShards()).toEqual([{ shard: `0:${c.nKvHeads}:0:${c.hiddenDim}`, role: 'member', users: 1 }])
    next.release()
    expect(host.loadedShards()).toEqual([{ shard: `0:${c.nKvHeads}:0:${c.hiddenDim}`, role: 'member', users: 0 }])
    const again = await host.lease(wholeModel(c), 'member')
    expect(again.model).toBe(next.model)
    again.release()
    // an idle shard of an older plan goes as soon as another plan's shard is asked for
    await host.lease(half(1), 'member')
    expect(host.loadedShards().map((s) => s.shard)).toEqual([`${half(1).kvHeadStart}:${c.nKvHeads}:${half(1).hiddenStart}:${c.hiddenDim}`])
    await host.stop()
    expect(host.loadedShards()).toEqual([])
  })

  it('refuses while the model is still being fetched', async () => {
    const host = new ModelHost(() => null, 1)
    await expect(host.lease(wholeModel(c), 'leader')).rejects.toBeInstanceOf(ModelNotReadyError)
    expect(() => host.served()).toThrow(ModelNotReadyError)
  })
})
