import type { Argv } from 'yargs'
import { callAgent, streamAgent } from '../agent/api/client.js'
import { AgentApiError } from '../agent/errors.js'
import { ChatNotSupportedError, NoPoolError, type InferenceEvent, type InferenceStats, type JobResult } from '../agent/inference/events.js'
import { MeshError } from '../errors.js'
import { InferenceSettingError, PromptTooLongError, UnsupportedModelError } from '../inference/errors.js'
import { JobFailedError, RingNotReadyError } from '../inference/job/errors.js'
import type { ChatMessage } from '../inference/text/chat-template.js'
import { resolvePoolId } from '../pool/index.js'
import type { MeshCommand } from './commands.js'
import type { CliIO, GlobalArgs } from '../process/io.js'

export interface PoolInferenceSettings {
  prompt: string
  messages?: readonly ChatMessage[]
  maxTokens: number
  temperature: number
  topP: number
  seed: bigint
  poolId?: string
}

/** The flags of `mesh inference` that only --local uses, as given (undefined when not). */
export interface LocalOnlyFlags { model?: string, tokenizer?: string, threads?: number, engine?: string }

/**
 * Refuse, rather than ignore, a --local flag on a pool job: the members run the model their
 * agents serve (`mesh start --model`), each with the engine --engine auto picks on all its cores.
 */
export function refuseLocalOnly (flags: LocalOnlyFlags): void {
  const given = (['model', 'tokenizer', 'threads', 'engine'] as const).filter((f) => flags[f] !== undefined).map((f) => `--${f}`)
  if (given.length === 0) return
  const what = given.some((f) => f === '--model' || f === '--tokenizer')
    ? 'the pool runs the model its agents serve (mesh start --model)'
    : 'pool members run the engine --engine auto picks on all their cores'
  throw new InferenceSettingError(`${given.join(' and ')} ${given.length === 1 ? 'applies' : 'apply'} to --local only: ${what}; drop ${given.length === 1 ? 'it' : 'them'} or add --local`)
}

/** The agent's errors by class name, so the CLI exits as the class says (usage errors: 2). */
const REMOTE_ERRORS: Record<string, new (message: string) => MeshError> = {
  PromptTooLongError, InferenceSettingError, NoPoolError, RingNotReadyError, JobFailedError, ChatNotSupportedError, UnsupportedModelError
}

/**
 * `mesh inference` on the pool: the agent leads the job across its ring and streams events; text
 * goes to stdout as tokens arrive, notices (a failover) and the figures to stderr.
 */
export async function inferOnPool (home: string, s: PoolInferenceSettings, json: boolean, io: CliIO): Promise<void> {
  const poolId = s.poolId === undefined ? undefined : resolvePoolId(home, s.poolId)
  const stream = !json && io.write !== undefined
  let result: JobResult | undefined
  let failure: MeshError | undefined
  let streamed = false
  await streamAgent(home, '/v1/inference', {
    prompt: s.prompt, maxTokens: s.maxTokens, temperature: s.temperature, topP: s.topP, seed: s.seed.toString(), ...(poolId === undefined ? {} : { poolId }), ...(s.messages === undefined ? {} : { messages: s.messages })
  }, (raw) => {
    const e = raw as InferenceEvent
    if (e.type === 'token' && stream) { io.write?.(Buffer.from(e.piece, 'base64')); streamed = true }
    else if (e.type === 'notice') io.err(`mesh: notice: ${e.message}`)
    else if (e.type === 'done') result = e.result
    else if (e.type === 'error') failure = new (REMOTE_ERRORS[e.error] ?? AgentApiError)(e.message)
  })
  if (failure !== undefined) {
    if (streamed) io.write?.(Buffer.from('\n')) // end the partial text's line before the error
    throw failure
  }
  if (result === undefined) throw new AgentApiError('the agent ended the job without a result; see MESH_HOME/logs/agent.log')
  if (json) { io.out(JSON.stringify(result)); return }
  if (stream) io.write?.(Buffer.from('\n'))
  else io.out(result.text)
  for (const line of jobSummary(result)) io.err(line)
}

const ms = (x: number): string => `${x.toFixed(1)} ms`
const short = (id: string): string => id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id

/** The figures after a job: speed, then one line per member with its share and where its time went. */
export function jobSummary (r: JobResult): string[] {
  const tps = r.tokens_per_second === null ? 'n/a' : r.tokens_per_second.toFixed(1)
  const failovers = r.failovers === 0 ? '' : `, ${r.failovers} failover${r.failovers === 1 ? '' : 's'}`
  return [
    `achieved tok/s: ${tps}, time to first token: ${ms(r.time_to_first_token_ms)}, ${r.generated_tokens} tokens (${r.stop_reason}), ${r.members.length} member${r.members.length === 1 ? '' : 's'}${failovers}`,
    ...r.members.map((m) => `  ${short(m.node_id)}${m.leader ? ' (leader)' : ''}  columns [${m.columns[0]}, ${m.columns[1]})  ${m.heads} heads, ${m.hidden_units} FFN units${m.heads === 0 && m.hidden_units === 0 ? ' (share rounds to nothing)' : ''}  compute ${ms(m.compute_ms)}  network ${ms(m.network_ms)}`)
  ]
}

export const inferenceStatsCommand: MeshCommand = (io) => ({
  command: 'inference-stats',
  describe: 'the last inference jobs this agent led, and totals: tokens/s, time to first token, per-member compute and network time',
  builder: (y: Argv<GlobalArgs>) => y,
  handler: async (argv) => {
    const a = argv as unknown as GlobalArgs
    const stats = await callAgent<InferenceStats>(a.home, 'GET', '/v1/inference-stats')
    if (a.json) { io.out(JSON.stringify(stats)); return }
    const t = stats.totals
    io.out(`${t.jobs} job${t.jobs === 1 ? '' : 's'} led by this agent, ${t.generated_tokens} tokens generated, ${t.failovers} failovers, ${t.failed} failed, ${t.cancelled} cancelled`)
    for (const j of stats.jobs) {
      io.out(`${j.finished_at}  ${j.kind} job ${j.job_id}  pool ${j.pool_id.slice(0, 12)}`)
      for (const line of jobSummary(j)) io.out(`  ${line}`)
    }
  }
})
