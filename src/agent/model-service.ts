import fs from 'node:fs'
import { MeshError } from '../errors.js'
import { hashFile, regularFileSize } from '../inference/files.js'
import { modelIdentity } from '../inference/identity.js'
import { BUNDLED_MODEL, identifyModel, type ServedModel } from '../inference/served.js'
import { fetchedModelPath, type ServeConfig } from './config.js'
import { headProblem, localCheckpoint, MODEL_HEAD_BYTES, type ModelFormat } from './model-files.js'
import type { Logger } from './log.js'
import { MODEL_PROTOCOL } from './net/model-wire.js'
import { FETCH_FAILURES, fetchModelOver, ModelFetchError, serveModelStream, type FetchFailure } from './net/model-transfer.js'
import type { PoolNetwork } from './net/pool-network.js'

/** A model file whose sha256 is not the one the member was told to serve. */
export class ModelMismatchError extends MeshError {}

/**
 * A form the missing model may take in the pool, and the id its servers announce: a GGUF file
 * is identified by its own sha256 twice (its tokenizer is inside), a llama2.c checkpoint by its
 * sha256 and the tokenizer this member has (served.ts identifyModel).
 */
export interface FetchWant { readonly format: ModelFormat, readonly modelId: string }

/** What the agent does about its model at start: serve files it has, or fetch the model file first. */
export type ModelPlan =
  | { readonly kind: 'serve', readonly model: ServedModel }
  | { readonly kind: 'fetch', readonly sha256: string, readonly home: string, readonly tokenizerPath: string, readonly wants: readonly FetchWant[] }

/**
 * Check and hash the model's files before anything starts, or plan the fetch of a missing model
 * file named by its sha256: a llama2.c checkpoint to pair with the tokenizer here, or (unless
 * --tokenizer names one) a GGUF file. A bad file throws one line naming it.
 */
export async function planModel (m: ServeConfig, home: string, onProgress?: (read: number, total: number) => void): Promise<ModelPlan> {
  const checkpointPath = localCheckpoint(m, home)
  if (checkpointPath !== null) {
    const model = await identifyModel({ ...m, checkpointPath }, onProgress)
    if (m.sha256 !== undefined && model.identity.checkpointSha256 !== m.sha256) {
      throw new ModelMismatchError(`model file ${checkpointPath} has sha256 ${model.identity.checkpointSha256}, not ${m.sha256} as --model-sha256 says; fix the flag, or remove the file to fetch the right one`)
    }
    return { kind: 'serve', model }
  }
  const sha256 = m.sha256 as string // localCheckpoint is never null without one
  await regularFileSize(m.tokenizerPath, 'tokenizer')
  const wants: FetchWant[] = [{ format: 'llama2c', modelId: modelIdentity(sha256, await hashFile(m.tokenizerPath)).id }]
  // served.ts refuses a GGUF file with a tokenizer named beside it: asked for one, only a checkpoint will do
  if (m.tokenizerPath === BUNDLED_MODEL.tokenizerPath) wants.push({ format: 'gguf', modelId: modelIdentity(sha256, sha256).id })
  return { kind: 'fetch', sha256, home, tokenizerPath: m.tokenizerPath, wants }
}

/**
 * The fetched file (its sha256 already checked) as a model this member can serve, else removed:
 * bytes with the right hash that are not the model announced mean the announce was forged, and
 * no other member can send other bytes for that hash.
 */
export async function adoptFetched (dest: string, tokenizerPath: string, want: FetchWant): Promise<ServedModel> {
  try {
    const model = await identifyModel({ checkpointPath: dest, tokenizerPath })
    if (model.identity.id !== want.modelId) throw new Error(`it is model ${model.identity.id}, not ${want.modelId} as announced`)
    return model
  } catch (err) {
    fs.rmSync(dest, { force: true })
    throw new ModelFetchError('unservable', `the file with that sha256 is not a model this member can serve: ${err instanceof Error ? err.message : String(err)}`)
  }
}

/** Where a fetch stands, for status and `mesh start`'s progress. */
export interface FetchStatus {
  readonly sha256: string
  readonly state: 'waiting' | 'fetching' | 'done' | 'failed'
  readonly from: string | null
  readonly read: number
  readonly total: number
  readonly error: string | null
  /** attempts that ended without the model, by reason: what members sent that was dropped */
  readonly drops: Readonly<Record<FetchFailure, number>>
}

export interface ModelServiceComponents {
  readonly net: PoolNetwork
  readonly log: Logger
}

/** how often a waiting fetch looks again for a member that serves the model */
const RETRY_MS = 1000
/** uploads served at once: a model is large, two are plenty on a LAN */
const MAX_UPLOADS = 2
/** the member sent other bytes than it claimed: it is not asked again */
const REFUSING: ReadonlySet<FetchFailure> = new Set(['wrong-hash', 'oversized', 'bad-answer', 'not-a-model'])
/** the same answer every time until something changes (a direct connection, free space): said once per member, asked again */
const SAID_ONCE: ReadonlySet<FetchFailure> = new Set(['too-large', 'no-space'])

/**
 * The model this member serves: answers /mesh/model/1.0.0 for members that lack it, and, when
 * started with a model file it lacks, fetches it from a member that announces it (in either
 * format), then announces it itself. A member that sent a wrong file is not asked again.
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
    // on a relayed connection too, for files that fit its limits (serveModelStream checks)
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

  private update (change: Partial<FetchStatus>): void {
    this.fetch = { ...(this.fetch as FetchStatus), ...change }
  }

  private async fetchLoop (plan: Extract<ModelPlan, { kind: 'fetch' }>): Promise<void> {
    const { log, net } = this.c
    const signal = this.abort.signal
    const refused = new Set<string>()
    // members whose last answer was one said once (SAID_ONCE): asked again quietly until it changes
    const quiet = new Map<string, FetchFailure>()
    const drops = Object.fromEntries(FETCH_FAILURES.map((r) => [r, 0])) as Record<FetchFailure, number>
    this.fetch = { sha256: plan.sha256, state: 'waiting', from: null, read: 0, total: 0, error: null, drops: { ...drops } }
    log.info({ sha256: plan.sha256, models: plan.wants.map((w) => w.modelId) }, 'model missing; waiting for a pool member that serves it')
    while (!signal.aborted) {
      const servers = plan.wants.flatMap((want) => net.membersServing(want.modelId).map((from) => ({ from, want })))
      for (const { from, want } of servers.filter((s) => !refused.has(s.from))) {
        if (signal.aborted) return
        this.update({ state: 'fetching', from, read: 0, total: 0 })
        if (!quiet.has(from)) log.info({ from, sha256: plan.sha256, format: want.format }, 'fetching the model')
        let model: ServedModel
        try {
          model = await this.fetchFrom(from, want, plan, signal)
        } catch (err) {
          const failure = err instanceof ModelFetchError ? err.reason : 'stream-error'
          drops[failure]++
          if (REFUSING.has(failure)) refused.add(from)
          this.update({ state: 'waiting', error: `${from}: ${failure}`, drops: { ...drops } })
          if (SAID_ONCE.has(failure) && quiet.get(from) === failure) continue
          if (SAID_ONCE.has(failure)) quiet.set(from, failure)
          else quiet.delete(from)
          log.warn({ from, reason: failure, err: err instanceof Error ? err.message : String(err) }, refused.has(from) ? 'refused the model a member sent; not asking it again' : 'could not fetch the model from a member')
          // the hash was right, so every member would send these same bytes: nothing left to try
          if (failure === 'unservable') {
            this.update({ state: 'failed', error: err instanceof Error ? err.message : String(err) })
            return
          }
          continue
        }
        this.model = model
        net.setModel(model.identity.id)
        this.update({ state: 'done', error: null })
        log.info({ model: model.identity.id, checkpoint: model.checkpointPath, checkpointSha256: model.identity.checkpointSha256, format: model.format }, 'model fetched and verified; serving it')
        return
      }
      await new Promise((resolve) => { setTimeout(resolve, RETRY_MS).unref() })
    }
  }

  /** One attempt: the file from `from` (its head judged first, then its hash), then as the model announced. */
  private async fetchFrom (from: string, want: FetchWant, plan: Extract<ModelPlan, { kind: 'fetch' }>, signal: AbortSignal): Promise<ServedModel> {
    const dest = fetchedModelPath(plan.home, plan.sha256, want.format)
    const stream = await this.c.net.openMemberStream(from, MODEL_PROTOCOL, signal)
    let logged = 0
    await fetchModelOver(stream, plan.sha256, dest, {
      checkHead: { bytes: MODEL_HEAD_BYTES, problem: (head) => headProblem(want.format, head) },
      onProgress: (read, total) => {
        this.update({ read, total })
        if (read - logged < total / 10 && read < total) return
        logged = read
        this.c.log.info({ from, read, total }, 'fetching the model')
      }
    })
    return await adoptFetched(dest, plan.tokenizerPath, want)
  }
}
