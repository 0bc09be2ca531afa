import { MeshError } from '../errors.js'
import { hashFile, regularFileSize } from '../inference/files.js'
import { modelIdentity } from '../inference/identity.js'
import { identifyModel, type ServedModel } from '../inference/served.js'
import { fetchedModelPath, type ServeConfig } from './config.js'
import { localCheckpoint } from './model-files.js'
import type { Logger } from './log.js'
import { MODEL_PROTOCOL } from './net/model-wire.js'
import { fetchModelOver, ModelFetchError, serveModelStream } from './net/model-transfer.js'
import type { PoolNetwork } from './net/pool-network.js'

/** A checkpoint whose sha256 is not the one the member was told to serve. */
export class ModelMismatchError extends MeshError {}

/** What the agent does about its model at start: serve files it has, or fetch the checkpoint first. */
export type ModelPlan =
  | { readonly kind: 'serve', readonly model: ServedModel }
  | { readonly kind: 'fetch', readonly sha256: string, readonly dest: string, readonly tokenizerPath: string, readonly modelId: string }

/**
 * Check and hash the model's files before anything starts, or plan the fetch of a missing
 * checkpoint named by its sha256 (the tokenizer must be here: its hash is part of the model id
 * that members announce). A bad file throws one line naming it.
 */
export async function planModel (m: ServeConfig, home: string, onProgress?: (read: number, total: number) => void): Promise<ModelPlan> {
  const checkpointPath = localCheckpoint(m, home)
  if (checkpointPath !== null) {
    const model = await identifyModel({ ...m, checkpointPath }, onProgress)
    if (m.sha256 !== undefined && model.identity.checkpointSha256 !== m.sha256) {
      throw new ModelMismatchError(`checkpoint ${checkpointPath} has sha256 ${model.identity.checkpointSha256}, not ${m.sha256} as --model-sha256 says; fix the flag, or remove the file to fetch the right one`)
    }
    return { kind: 'serve', model }
  }
  const sha256 = m.sha256 as string // localCheckpoint is never null without one
  await regularFileSize(m.tokenizerPath, 'tokenizer')
  const modelId = modelIdentity(sha256, await hashFile(m.tokenizerPath)).id
  return { kind: 'fetch', sha256, dest: fetchedModelPath(home, sha256), tokenizerPath: m.tokenizerPath, modelId }
}

/** Where a fetch stands, for status and `mesh start`'s progress. */
export interface FetchStatus {
  readonly sha256: string
  readonly state: 'waiting' | 'fetching' | 'done' | 'failed'
  readonly from: string | null
  readonly read: number
  readonly total: number
  readonly error: string | null
}

export interface ModelServiceComponents {
  readonly net: PoolNetwork
  readonly log: Logger
}

/** how often a waiting fetch looks again for a member that serves the model */
const RETRY_MS = 1000
/** uploads served at once: a model is large, two are plenty on a LAN */
const MAX_UPLOADS = 2

/**
 * The model this member serves: answers /mesh/model/1.0.0 for members that lack it, and, when
 * started with a checkpoint it lacks, fetches it from a member that announces the model id,
 * then announces it itself. A member that sent a wrong file is not asked again.
 */
export class ModelService {
  private model: ServedModel | null
  private fetch: FetchStatus | null = null
  private abort = new AbortController()
  private running: Promise<void> | null = null

  constructor (private readonly plan: ModelPlan, private readonly c: ModelServiceComponents) {
    this.model = plan.kind === 'serve' ? plan.model : null
  }

  served (): ServedModel | null { return this.model }
  fetchStatus (): FetchStatus | null { return this.fetch }

  async start (): Promise<void> {
    if (this.running !== null) return
    this.abort = new AbortController()
    // on a relayed connection too, for checkpoints that fit its limits (serveModelStream checks)
    await this.c.net.handleMemberProtocol(MODEL_PROTOCOL, async (stream, _from, limits) => {
      const m = this.model
      await serveModelStream(stream, m === null ? null : { path: m.checkpointPath, sha256: m.identity.checkpointSha256 }, this.c.log, limits)
    }, MAX_UPLOADS)
    const plan = this.plan
    this.running = plan.kind === 'fetch' ? this.fetchLoop(plan) : Promise.resolve()
  }

  async stop (): Promise<void> {
    this.abort.abort()
    await this.running
    this.running = null
  }

  private async fetchLoop (plan: Extract<ModelPlan, { kind: 'fetch' }>): Promise<void> {
    const { log, net } = this.c
    const signal = this.abort.signal
    const refused = new Set<string>()
    // members reached only through a relay that cannot carry the file: said once, asked again (DCUtR may connect us directly)
    const tooLarge = new Set<string>()
    this.fetch = { sha256: plan.sha256, state: 'waiting', from: null, read: 0, total: 0, error: null }
    log.info({ sha256: plan.sha256, model: plan.modelId }, 'model missing; waiting for a pool member that serves it')
    while (!signal.aborted) {
      for (const from of net.membersServing(plan.modelId).filter((n) => !refused.has(n))) {
        if (signal.aborted) return
        let logged = 0
        this.fetch = { ...this.fetch, state: 'fetching', from, read: 0, total: 0 }
        if (!tooLarge.has(from)) log.info({ from, sha256: plan.sha256 }, 'fetching the model')
        try {
          const stream = await net.openMemberStream(from, MODEL_PROTOCOL, signal)
          await fetchModelOver(stream, plan.sha256, plan.dest, (read, total) => {
            this.fetch = { ...(this.fetch as FetchStatus), read, total }
            if (read - logged < total / 10 && read < total) return
            logged = read
            log.info({ from, read, total }, 'fetching the model')
          })
        } catch (err) {
          const failure = err instanceof ModelFetchError ? err.reason : 'stream-error'
          // a member that sent other bytes than it claimed is not asked again
          if (failure === 'wrong-hash' || failure === 'oversized' || failure === 'bad-answer') refused.add(from)
          this.fetch = { ...(this.fetch as FetchStatus), state: 'waiting', error: `${from}: ${failure}` }
          if (failure === 'too-large' && tooLarge.has(from)) continue
          if (failure === 'too-large') tooLarge.add(from)
          log.warn({ from, reason: failure, err: err instanceof Error ? err.message : String(err) }, refused.has(from) ? 'refused the model a member sent; not asking it again' : 'could not fetch the model from a member')
          continue
        }
        await this.serveFetched(plan)
        return
      }
      await new Promise((resolve) => { setTimeout(resolve, RETRY_MS).unref() })
    }
  }

  private async serveFetched (plan: Extract<ModelPlan, { kind: 'fetch' }>): Promise<void> {
    try {
      const model = await identifyModel({ checkpointPath: plan.dest, tokenizerPath: plan.tokenizerPath })
      this.model = model
      this.c.net.setModel(model.identity.id)
      this.fetch = { ...(this.fetch as FetchStatus), state: 'done', error: null }
      this.c.log.info({ model: model.identity.id, checkpoint: model.checkpointPath, checkpointSha256: model.identity.checkpointSha256 }, 'model fetched and verified; serving it')
    } catch (err) {
      // the bytes match the sha256 asked for, yet do not make a model with this tokenizer
      this.fetch = { ...(this.fetch as FetchStatus), state: 'failed', error: err instanceof Error ? err.message : String(err) }
      this.c.log.error({ err: String(err) }, 'the fetched checkpoint cannot be served')
    }
  }
}
