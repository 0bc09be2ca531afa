import os from 'node:os'
import type { ShardedModel } from '../../inference/forward.js'
import { autoEngineName, chooseEngine, loadModel, shardedModel, type LoadedModel } from '../../inference/model.js'
import type { ModelFiles } from '../../inference/served.js'
import type { Shard } from '../../inference/shard.js'
import { MeshError } from '../../errors.js'

/** A job needs the model before this agent has it. */
export class ModelNotReadyError extends MeshError {}

/**
 * The model this agent serves, loaded on first use, and its shards on the engine
 * `mesh inference --local` picks (chooseEngine). For now every member loads the whole checkpoint and runs its
 * shard's slice of it; `modelForShard` is where a loader that reads only the owned slices plugs in.
 */
export class ModelHost {
  private loading: Promise<LoadedModel> | undefined
  private readonly shards = new Map<string, Promise<ShardedModel>>()

  /** `files`: the model served now; null while it is still being fetched from a peer */
  constructor (private readonly files: () => ModelFiles | null) {}

  async loaded (): Promise<LoadedModel> {
    const files = this.files()
    if (files === null) throw new ModelNotReadyError('this agent is still fetching its model from a pool member; try again when `mesh start` shows it ready')
    // load straight into the wasm heap when that is the engine chooseEngine picks
    this.loading ??= loadModel({ ...files, forWasm: autoEngineName() === 'wasm' })
    try {
      return await this.loading
    } catch (err) {
      this.loading = undefined // a missing or bad file can be fixed without restarting the agent
      throw err
    }
  }

  async modelForShard (shard: Shard): Promise<ShardedModel> {
    const key = `${shard.kvHeadStart}:${shard.kvHeadEnd}:${shard.hiddenStart}:${shard.hiddenEnd}`
    let m = this.shards.get(key)
    if (m === undefined) {
      m = this.loaded().then(async (loaded) => await shardedModel(loaded, chooseEngine(loaded.checkpoint.config, os.availableParallelism()), shard))
      this.shards.set(key, m)
    }
    return await m
  }

  async stop (): Promise<void> {
    const all = [...this.shards.values()]
    this.shards.clear()
    await Promise.all(all.map(async (p) => { await (await p.catch(() => undefined))?.matmuls.close() }))
  }
}
