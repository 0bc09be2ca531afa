import os from 'node:os'
import { fileURLToPath } from 'node:url'
import type { Argv, CommandModule } from 'yargs'
import { InferenceSettingError, TokenizerFormatError } from '../inference/errors.js'
import type { EngineName } from '../inference/model.js'
import type { MeshCommand } from './commands.js'
import { inferOnPool, refuseLocalOnly } from './inference-pool.js'
import type { CliIO, GlobalArgs } from './io.js'
import { byteProgress } from './progress.js'

/** The bundled stories260K, relative to this file in both src/cli and dist/cli. */
const BUNDLED = (file: string): string => fileURLToPath(new URL(`../../models/stories260K/${file}`, import.meta.url))

interface InferenceArgs extends GlobalArgs {
  local: boolean
  prompt: string
  'max-tokens': number
  // --local only: left undefined when not given, so the pool path can refuse them
  model?: string
  tokenizer?: string
  temperature: number
  'top-p': number
  seed?: string
  threads?: number
  engine?: string
  'pool-id'?: string
}

export const inferenceCommand: MeshCommand = (io): CommandModule<GlobalArgs, InferenceArgs> => ({
  command: 'inference',
  describe: 'generate text from a prompt across the pool\'s ring, through the agent (--local: on this device, without an agent)',
  // the engines (most of the inference code) are loaded when this command runs, not by every command;
  // so the builder is async: --engine's choices come with them
  builder: async (y: Argv<GlobalArgs>) => {
    const { ENGINES } = await import('../inference/model.js')
    return y
      .option('local', { type: 'boolean', default: false, describe: 'run on this device only, without the agent and the pool' })
      .option('pool-id', { type: 'string', describe: 'the pool whose ring runs the job (Pool ID or a unique prefix of at least 16 hex digits)', defaultDescription: 'the only pool joined' })
      .option('prompt', { type: 'string', default: '', describe: 'text to continue; empty starts from BOS' })
      .option('max-tokens', { type: 'number', default: 256, describe: 'new tokens to generate (stops earlier at BOS/EOS or a full context)' })
      .option('model', { type: 'string', defaultDescription: 'bundled stories260K', describe: '--local only: llama2.c checkpoint (v0 or v1 fp32); the pool runs the model its agents serve (mesh start --model)' })
      .option('tokenizer', { type: 'string', defaultDescription: 'bundled tok512.bin', describe: '--local only: llama2.c tokenizer.bin with the model\'s vocabulary' })
      .option('temperature', { type: 'number', default: 1.0, describe: '0 = greedy; 1.0 samples the model\'s own distribution (llama2.c default)' })
      .option('top-p', { type: 'number', default: 0.9, describe: 'nucleus sampling mass in (0, 1]; 1 = off (llama2.c default 0.9)' })
      .option('seed', { type: 'string', describe: 'random seed, an integer from 1 to 2^64-1, for reproducible sampling', defaultDescription: 'the current time' })
      .option('threads', { type: 'number', defaultDescription: 'all cores', describe: '--local only: threads for the matrix kernels (native, wasm, onnx); pool members use all their cores' })
      .option('engine', { type: 'string', choices: ['auto', ...ENGINES], defaultDescription: 'auto', describe: '--local only (pool members run auto): kernels: auto is native (C built at install, as fast as llama2.c) where it was built, else wasm (bench/README.md), on --threads threads for models big enough to split' })
  },
  handler: async (args) => { await runInference(args, io) }
})

async function runInference (args: InferenceArgs, io: CliIO): Promise<void> {
  const settings = parseSettings(args)
  if (!args.local) {
    refuseLocalOnly(args)
    await inferOnPool(args.home, { prompt: args.prompt, maxTokens: settings.maxTokens, temperature: settings.temperature, topP: settings.topP, seed: settings.seed, poolId: args['pool-id'] }, args.json, io)
    return
  }
  const [{ autoEngineName, chooseEngine, loadModel, shardedModel }, { generate }, { createSampler }] =
    await Promise.all([import('../inference/model.js'), import('../inference/generate.js'), import('../inference/sampler.js')])
  const progress = byteProgress(io, 'loading model')
  const checkpoint = args.model ?? BUNDLED('stories260K.bin')
  const engineName = args.engine === undefined || args.engine === 'auto' ? autoEngineName() : args.engine as EngineName
  const loaded = await loadModel({ checkpointPath: checkpoint, tokenizerPath: args.tokenizer ?? BUNDLED('tok512.bin'), onProgress: progress.onProgress, forWasm: engineName === 'wasm' })
    .catch((err: unknown) => {
      if (err instanceof TokenizerFormatError) throw new TokenizerFormatError(`${err.message} (give the model's tokenizer with --tokenizer)`)
      throw err
    })
    .finally(progress.done)
  const engine = args.engine === undefined || args.engine === 'auto' ? chooseEngine(loaded.checkpoint.config, settings.threads) : { name: engineName, threads: engineName === 'ts' ? 1 : settings.threads }
  const model = await shardedModel(loaded, engine)
  try {
    const stream = !args.json && io.write !== undefined
    const result = await generate(model, loaded.tokenizer, {
      prompt: args.prompt,
      maxTokens: settings.maxTokens,
      sampler: createSampler(settings),
      onToken: stream ? (_id, printed) => io.write?.(printed) : undefined
    })
    const text = Buffer.from(result.printed).toString('utf8')
    const peakRssBytes = process.resourceUsage().maxRSS * 1024
    if (args.json) {
      io.out(JSON.stringify({
        text,
        token_ids: result.tokenIds,
        prompt_token_ids: result.promptTokenIds,
        generated_tokens: result.generated,
        stop_reason: result.stopReason,
        tokens_per_second: result.tokensPerSecond,
        time_to_first_token_ms: result.firstTokenMs,
        total_ms: result.totalMs,
        load_ms: loaded.loadMs,
        peak_rss_bytes: peakRssBytes,
        engine: model.matmuls.name,
        threads: engine.threads,
        model: { id: loaded.identity.id, checkpoint, checkpoint_sha256: loaded.identity.checkpointSha256, tokenizer_sha256: loaded.identity.tokenizerSha256 }
      }))
      return
    }
    if (stream) io.write?.(Buffer.from('\n'))
    else io.out(text)
    const tps = result.tokensPerSecond === null ? 'n/a' : result.tokensPerSecond.toFixed(1)
    io.err(`achieved tok/s: ${tps}, time to first token: ${result.firstTokenMs.toFixed(1)} ms, load: ${loaded.loadMs.toFixed(0)} ms, ${result.generated} tokens (${result.stopReason}), engine ${model.matmuls.name}, peak RSS ${(peakRssBytes / (1 << 20)).toFixed(0)} MiB`)
  } finally {
    await model.matmuls.close()
  }
}

interface Settings { maxTokens: number, temperature: number, topP: number, seed: bigint, threads: number }

/** Reject, don't clamp: every out-of-range flag is a one-line error. */
function parseSettings (args: InferenceArgs): Settings {
  const maxTokens = args['max-tokens']
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InferenceSettingError(`--max-tokens is ${maxTokens}; it must be a whole number of at least 1`)
  const threads = args.threads ?? os.availableParallelism()
  if (!Number.isInteger(threads) || threads < 1) throw new InferenceSettingError(`--threads is ${threads}; it must be a whole number of at least 1`)
  const seedText = args.seed ?? String(Date.now())
  if (!/^\d+$/.test(seedText)) throw new InferenceSettingError(`--seed is ${JSON.stringify(seedText)}; use an integer from 1 to 2^64-1`)
  // temperature, top-p and the seed's range are checked by the sampler itself
  return { maxTokens, temperature: args.temperature, topP: args['top-p'], seed: BigInt(seedText), threads }
}
