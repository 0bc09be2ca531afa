import os from 'node:os'
import { llama2cJobModel, type Llama2cJobModel } from '../../inference/job/llama2c.js'
import { chooseEngine, loadShardModel } from '../../inference/model.js'
import type { ModelLease } from '../../inference/job/session.js'
import { defaultLlmEngine } from '../../inference/llm/engine.js'
import { llmModel, llmThreads, loadGguf, type LoadedGguf } from '../../inference/llm/load.js'
import type { LlmModel } from '../../inference/llm/forward.js'
import type { ServedGguf, ServedLlama2c, ServedModel } from '../../inference/served.js'
import type { Shard } from '../../inference/shard.js'
import { loadTokenizer, type Tokenizer } from '../../inference/tokenizer.js'
import { MeshError } from '../../errors.js'

/** A job needs the model before this agent has it. */
export class ModelNotReadyError extends MeshError {}

/** A job's leader embeds and samples: its shard holds the embedding and the classifier; a member's holds neither. */
export type ShardRole = 'leader' | 'member'

interface Held {
  readonly model: Promise<Llama2cJobModel>
  readonly role: ShardRole
  users: number
}

/**
 * The model this agent serves, as the shards its jobs compute with, on the engine
 * `mesh inference --local` picks (chooseEngine). Each shard is read from the checkpoint file on first use:
 * only its slices of the layers (loadShardModel); the embedding and the classifier only for a
 * leader, which embeds each token (sending the row to the members) and samples.
 * The shard of the latest plan stays loaded between jobs; any other is freed as soon as no job
 * uses it, so after a re-plan (a failover, a member joining) memory follows the new share.
 */
export class ModelHost {
  private readonly held = new Map<string, Held>()
  private latest = ''
  private tokenizerOf: { id: string, loading: Promise<Tokenizer> } | undefined
  private ggufOf: { id: string, loading: Promise<{ g: LoadedGguf, model: LlmModel }> } | undefined

  /** `served`: the model served now; null while it is still being fetched from a peer */
  constructor (private readonly current: () => ServedModel | null, private readonly threads = os.availableParallelism()) {}

  /** The model served now (checked and hashed at start): its shape and identity, without its weights. */
  served (): ServedModel {
    const s = this.current()
    if (s === null) throw new ModelNotReadyError('this agent is still fetching its model from a pool member; try again when `mesh start` shows it ready')
    return s
  }

  /** The served llama2.c checkpoint (what ring jobs run); a GGUF model runs through gguf(). */
  private servedLlama2c (): ServedLlama2c {
    const s = this.served()
    if (s.format !== 'llama2c') throw new ModelNotReadyError('GGUF models run on a ring of one member for now; this job needs the llama2.c path')
    return s
  }

  /**
   * The served GGUF model, whole, on the native kernels where built (else wasm): loaded on first use and kept
   * (a ring of one runs it on this device alone).
   */
  async gguf (s: ServedGguf): Promise<{ g: LoadedGguf, model: LlmModel }> {
    if (this.ggufOf?.id !== s.identity.id) {
      const engine = defaultLlmEngine() // the wasm kernels read weights only from their own memory: load for the engine
      const loading = loadGguf(s.checkpointPath, undefined, engine).then((g) => {
        if (g.sha256 !== s.identity.checkpointSha256) throw new ModelNotReadyError(`the model file changed on disk since this agent hashed it (${s.checkpointPath}); restart it with \`mesh start\``)
        return { g, model: llmModel(g, engine, llmThreads(engine, g.config, this.threads)) }
      })
      this.ggufOf = { id: s.identity.id, loading }
    }
    const mine = this.ggufOf
    try {
      return await mine.loading
    } catch (err) {
      if (this.ggufOf === mine) this.ggufOf = undefined
      throw err
    }
  }

  /** The served model's tokenizer, for the jobs this agent leads. */
  async tokenizer (): Promise<Tokenizer> {
    const s = this.servedLlama2c()
    if (this.tokenizerOf?.id !== s.identity.id) this.tokenizerOf = { id: s.identity.id, loading: loadTokenizer(s.tokenizerPath, s.config.vocabSize) }
    const mine = this.tokenizerOf
    try {
      return await mine.loading
    } catch (err) {
      if (this.tokenizerOf === mine) this.tokenizerOf = undefined // a bad file can be fixed without restarting the agent
      throw err
    }
  }

  /** This node's shard of the served model, for a job it leads or serves as a member. */
  async lease (shard: Shard, role: ShardRole): Promise<ModelLease & { readonly model: Llama2cJobModel }> {
    const s = this.servedLlama2c()
    const base = `${s.identity.id}:${shard.kvHeadStart}:${shard.kvHeadEnd}:${shard.hiddenStart}:${shard.hiddenEnd}`
    // a leader's shard serves a member's job as well
    const key = role === 'leader' || this.held.has(`${base}:leader`) ? `${base}:leader` : base
    this.latest = key
    this.freeIdle() // before loading: an old plan's idle shard goes first
    const found = this.held.get(key)
    const held = found ?? { model: this.load(s, shard, role), role, users: 0 }
    if (found === undefined) this.held.set(key, held)
    held.users++
    let model: Llama2cJobModel
    try {
      model = await held.model
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
    this.ggufOf = undefined
    await Promise.all(all.map(close))
  }
}

async function close (h: Held): Promise<void> {
  await (await h.model.catch(() => undefined))?.sharded.matmuls.close()
}
