import os from 'node:os'
import { llama2cJobModel, type Llama2cJobModel } from '../../inference/job/llama2c.js'
import { chooseEngine, loadShardModel } from '../../inference/model.js'
import { llmJobModel } from '../../inference/job/llm.js'
import type { JobModel, ModelLease } from '../../inference/job/session.js'
import { readGguf, type GgufFile } from '../../inference/gguf/reader.js'
import { defaultLlmEngine } from '../../inference/llm/engine.js'
import { llmModel, llmThreads, loadGgufShard } from '../../inference/llm/load.js'
import type { LlmShard } from '../../inference/llm/shard-plan.js'
import type { ServedLlama2c, ServedModel } from '../../inference/served.js'
import { ggufTokenizer, type TextTokenizer } from '../../inference/text/tokenizer.js'
import type { Shard } from '../../inference/shard.js'
import { loadTokenizer, type Tokenizer } from '../../inference/tokenizer.js'
import { MeshError } from '../../errors.js'

/** A job needs the model before this agent has it. */
export class ModelNotReadyError extends MeshError {}

/** A job's leader embeds and samples: its shard holds the embedding and the classifier; a member's holds neither. */
export type ShardRole = 'leader' | 'member'

interface Held {
  readonly model: Promise<JobModel>
  readonly role: ShardRole
  readonly close: (m: JobModel) => Promise<void>
  users: number
}

/** The text side of a served GGUF model, for the jobs this agent leads: its tokenizer and header (chat template). */
export interface GgufText {
  readonly file: GgufFile
  readonly tokenizer: TextTokenizer
}

/**
 * The model this agent serves, as the shards its jobs compute with, on the engine
 * `mesh inference --local` picks. Each shard is read from the model file on first use: only its
 * slices of the layers (loadShardModel, loadGgufShard); the embedding and the classifier only for
 * a leader, which embeds each token (sending the row to the members) and samples.
 * The shard of the latest plan stays loaded between jobs; any other is freed as soon as no job
 * uses it, so after a re-plan (a failover, a member joining) memory follows the new share.
 */
export class ModelHost {
  private readonly held = new Map<string, Held>()
  private latest = ''
  private tokenizerOf: { id: string, loading: Promise<Tokenizer> } | undefined
  private ggufTextOf: { id: string, loading: Promise<GgufText> } | undefined

  /** `served`: the model served now; null while it is still being fetched from a peer */
  constructor (private readonly current: () => ServedModel | null, private readonly threads = os.availableParallelism()) {}

  /** The model served now (checked and hashed at start): its shape and identity, without its weights. */
  served (): ServedModel {
    const s = this.current()
    if (s === null) throw new ModelNotReadyError('this agent is still fetching its model from a pool member; try again when `mesh start` shows it ready')
    return s
  }

  private servedAs<F extends ServedModel['format']> (format: F): Extract<ServedModel, { format: F }> {
    const s = this.served()
    if (s.format !== format) throw new ModelNotReadyError(`this agent now serves a ${s.format} model, not the ${format} one the job needs; try again`)
    return s as Extract<ServedModel, { format: F }>
  }

  /** The served GGUF model's tokenizer and header, read once (the weights come with the shards). */
  async ggufText (): Promise<GgufText> {
    const s = this.servedAs('gguf')
    if (this.ggufTextOf?.id !== s.identity.id) {
      this.ggufTextOf = { id: s.identity.id, loading: readGguf(s.checkpointPath).then((file) => ({ file, tokenizer: ggufTokenizer(file.metadata, s.checkpointPath) })) }
    }
    const mine = this.ggufTextOf
    try {
      return await mine.loading
    } catch (err) {
      if (this.ggufTextOf === mine) this.ggufTextOf = undefined
      throw err
    }
  }

  /** The served model's tokenizer, for the jobs this agent leads. */
  async tokenizer (): Promise<Tokenizer> {
    const s = this.servedAs('llama2c')
    if (this.tokenizerOf?.id !== s.identity.id) this.tokenizerOf = { id: s.identity.id, loading: loadTokenizer(s.tokenizerPath, s.config.vocabSize) }
    const mine = this.tokenizerOf
    try {
      return await mine.loading
    } catch (err) {
      if (this.tokenizerOf === mine) this.tokenizerOf = undefined // a bad file can be fixed without restarting the agent
      throw err
    }
  }

  /** This node's shard of the served llama2.c model, for a job it leads or serves as a member. */
  async lease (shard: Shard, role: ShardRole): Promise<ModelLease & { readonly model: Llama2cJobModel }> {
    const s = this.servedAs('llama2c')
    return await this.hold(`${s.identity.id}:${shard.kvHeadStart}:${shard.kvHeadEnd}:${shard.hiddenStart}:${shard.hiddenEnd}`, role,
      async () => await this.load(s, shard, role), async (m) => { await m.sharded.matmuls.close() })
  }

  /** This node's shard of the served GGUF model, on the native kernels where built (else wasm). */
  async leaseGguf (shard: LlmShard, role: ShardRole): Promise<ModelLease> {
    const s = this.servedAs('gguf')
    return await this.hold(`${s.identity.id}:${shard.headStart}:${shard.headEnd}:${shard.hiddenStart}:${shard.hiddenEnd}:${shard.vocabStart}:${shard.vocabEnd}`, role, async () => {
      const engine = defaultLlmEngine() // the wasm kernels read weights only from their own memory: load for the engine
      const { file } = await this.ggufText()
      const g = await loadGgufShard(file, s.identity.checkpointSha256, shard, role, engine)
      return llmJobModel(llmModel(g, engine, llmThreads(engine, g.config, this.threads)))
    }, async () => {})
  }

  /** A shard by key (model id and units), loaded once; a leader's shard serves a member's job as well. */
  private async hold<M extends JobModel> (base: string, role: ShardRole, load: () => Promise<M>, close: (m: M) => Promise<void>): Promise<ModelLease & { readonly model: M }> {
    const key = role === 'leader' || this.held.has(`${base}:leader`) ? `${base}:leader` : base
    this.latest = key
    this.freeIdle() // before loading: an old plan's idle shard goes first
    const found = this.held.get(key)
    // one key always holds the same kind of model (the id names the format), so the casts only undo the map's widening
    const held = found ?? { model: load(), role, users: 0, close: close as (m: JobModel) => Promise<void> }
    if (found === undefined) this.held.set(key, held)
    held.users++
    let model: M
    try {
      model = await held.model as M
    } catch (err) {
      held.users--
      if (this.held.get(key) === held) this.held.delete(key)
      throw err
    }
    let released = false
    return {
      model,
      release: () => {
        if (released) return
        released = true
        held.users--
        this.freeIdle()
      }
    }
  }

  private async load (s: ServedLlama2c, shard: Shard, role: ShardRole): Promise<Llama2cJobModel> {
    const loaded = await loadShardModel({
      checkpointPath: s.checkpointPath,
      tokenizerPath: s.tokenizerPath,
      shard,
      engine: chooseEngine(s.config, this.threads),
      withClassifier: role === 'leader',
      withEmbedding: role === 'leader',
      checkpointSha256: s.identity.checkpointSha256
    })
    if (loaded.identity.id !== s.identity.id) {
      await loaded.model.matmuls.close()
      throw new ModelNotReadyError(`the model files changed on disk since this agent hashed them (${s.checkpointPath}); restart it with \`mesh start\``)
    }
    return llama2cJobModel(loaded.model)
  }

  /** Free every shard no job uses, but the latest plan's. */
  private freeIdle (): void {
    for (const [key, h] of this.held) {
      if (h.users > 0 || key === this.latest) continue
      this.held.delete(key)
      void close(h)
    }
  }

  /** Shards loaded now, for tests and status: their keys' shard part, role and users. */
  loadedShards (): Array<{ shard: string, role: ShardRole, users: number }> {
    return [...this.held].map(([key, h]) => ({ shard: key.split(':').slice(1, 5).join(':'), role: h.role, users: h.users }))
  }

  async stop (): Promise<void> {
    const all = [...this.held.values()]
    this.held.clear()
    this.ggufTextOf = undefined
    await Promise.all(all.map(close))
  }
}

async function close (h: Held): Promise<void> {
  const m = await h.model.catch(() => undefined)
  if (m !== undefined) await h.close(m)
}
