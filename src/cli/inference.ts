import os from 'node:os'
import type { Argv, CommandModule } from 'yargs'
import { UsageError } from '../errors.js'
import { InferenceSettingError, TokenizerFormatError } from '../inference/errors.js'
import { isGgufFile } from '../inference/gguf/reader.js'
import type { EngineName } from '../inference/model.js'
import { bundledModelFile } from './bundled-model.js'
import type { MeshCommand } from './commands.js'
import { conversation, runGgufLocal } from './inference-gguf.js'
import { inferOnPool, refuseLocalOnly } from './inference-pool.js'
import type { CliIO, GlobalArgs } from '../process/io.js'
import { byteProgress } from './progress.js'

interface InferenceArgs extends GlobalArgs {
  local: boolean
  prompt: string
  'max-tokens': number
  // --local only: left undefined when not given, so the pool path can refuse them
  model?: string
  tokenizer?: string
  temperature?: number
  'top-p'?: number
  'top-k'?: number
  'min-p'?: number
  ctx?: number
  chat?: string
  system?: string
  messages?: string
  'ignore-eog': boolean
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
      .option('chat', { type: 'string', describe: 'GGUF models: a user message, rendered with the model\'s own chat template (by the job\'s leader on the pool); prints only the reply' })
      .option('system', { type: 'string', describe: 'with --chat: the system message' })
      .option('messages', { type: 'string', describe: 'GGUF models: a JSON file holding an array of {role, content} (system/user/assistant): a whole conversation' })
      .option('max-tokens', { type: 'number', default: 256, describe: 'new tokens to generate (stops earlier at BOS/EOS or a full context)' })
      .option('model', { type: 'string', defaultDescription: 'bundled stories260K', describe: '--local only: a GGUF file (llama, qwen2, qwen3; F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/Q4_K/Q5_K/Q6_K) or a llama2.c checkpoint (v0 or v1 fp32); the pool runs the model its agents serve (mesh start --model)' })
      .option('tokenizer', { type: 'string', defaultDescription: 'bundled tok512.bin', describe: '--local only, llama2.c checkpoints: tokenizer.bin with the model\'s vocabulary (a GGUF file carries its own)' })
      .option('temperature', { type: 'number', defaultDescription: '0.8 for GGUF (llama.cpp\'s), 1.0 for llama2.c (run.c\'s)', describe: '0 = greedy' })
      .option('top-p', { type: 'number', defaultDescription: '0.95 for GGUF, 0.9 for llama2.c', describe: 'nucleus sampling mass in (0, 1]; 1 = off' })
      .option('top-k', { type: 'number', defaultDescription: '40 for GGUF, 0 (off) for llama2.c', describe: 'sample only from the k likeliest tokens; 0 = off' })
      .option('min-p', { type: 'number', defaultDescription: '0.05 for GGUF, 0 (off) for llama2.c', describe: 'drop tokens less likely than min-p × the likeliest; 0 = off' })
      .option('ignore-eog', { type: 'boolean', default: false, describe: '--local, GGUF: keep generating past end-of-generation tokens (benchmarks, like llama.cpp\'s --ignore-eos)' })
      .option('ctx', { type: 'number', defaultDescription: 'prompt + max tokens', describe: '--local, GGUF: KV cache positions (at most the model\'s context)' })
      .option('seed', { type: 'string', describe: 'random seed, an integer from 1 to 2^64-1, for reproducible sampling', defaultDescription: 'the current time' })
      .option('threads', { type: 'number', defaultDescription: 'all cores', describe: '--local only: threads for the matrix kernels (native, wasm, onnx); pool members use all their cores' })
      .option('engine', { type: 'string', choices: ['auto', ...ENGINES], defaultDescription: 'auto', describe: '--local only (pool members run auto): kernels: auto is native (C built at install, as fast as llama2.c) where it was built, else wasm (bench/README.md), on --threads threads for models big enough to split' })
  },
  handler: async (args) => { await runInference(args, io) }
})

async function runInference (args: InferenceArgs, io: CliIO): Promise<void> {
  const gguf = args.local && args.model !== undefined && await isGgufFile(args.model)
  const settings = parseSettings(args, gguf)
  if (gguf && args.model !== undefined) {
    if (args.tokenizer !== undefined) throw new UsageError(`--tokenizer does not apply to GGUF models: ${args.model} carries its own tokenizer`)
    await runGgufLocal({
      model: args.model,
      prompt: args.prompt,
      chat: args.chat,
      system: args.system,
      messages: args.messages,
      maxTokens: settings.maxTokens,
      ctx: args.ctx,
      sampler: settings,
      engine: args.engine,
      threads: settings.threads,
      ignoreEog: args['ignore-eog'],
      json: args.json
    }, io)
    return
  }
  if (!args.local) {
    if (args['top-k'] !== undefined || args['min-p'] !== undefined) throw new UsageError('--top-k and --min-p apply to --local for now; pool jobs sample with --temperature and --top-p')
    if (args.ctx !== undefined) throw new UsageError('--ctx applies to --local for now; pool jobs size the KV cache to prompt + max tokens')
    refuseLocalOnly(args)
    // the leader renders a chat with the served model's template
    const messages = await conversation(args) ?? undefined
    await inferOnPool(args.home, { prompt: args.prompt, messages, maxTokens: settings.maxTokens, temperature: settings.temperature, topP: settings.topP, seed: settings.seed, poolId: args['pool-id'] }, args.json, io)
    return
  }
  if (args.chat !== undefined || args.messages !== undefined || args.system !== undefined) {
    throw new UsageError('chat needs a GGUF model with a chat template (--model FILE.gguf); llama2.c checkpoints have none')
  }
  if (args.ctx !== undefined) throw new UsageError('--ctx applies to GGUF models (--local --model FILE.gguf)')
  const [{ autoEngineName, chooseEngine, loadModel, shardedModel }, { generate }, { createSampler }] =
    await Promise.all([import('../inference/model.js'), import('../inference/generate.js'), import('../inference/sampler.js')])
  const progress = byteProgress(io, 'loading model')
  const checkpoint = args.model ?? bundledModelFile('stories260K.bin')
  const engineName = args.engine === undefined || args.engine === 'auto' ? autoEngineName() : args.engine as EngineName
  const loaded = await loadModel({ checkpointPath: checkpoint, tokenizerPath: args.tokenizer ?? bundledModelFile('tok512.bin'), onProgress: progress.onProgress, forWasm: engineName === 'wasm' })
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

interface Settings { maxTokens: number, temperature: number, topP: number, topK: number, minP: number, seed: bigint, threads: number }

/** Sampling defaults: llama.cpp's for GGUF models (what their users know), run.c's for llama2.c checkpoints. */
const SAMPLING_DEFAULTS = {
  gguf: { temperature: 0.8, topP: 0.95, topK: 40, minP: 0.05 },
  llama2c: { temperature: 1.0, topP: 0.9, topK: 0, minP: 0 }
}

/** Reject, don't clamp: every out-of-range flag is a one-line error. */
function parseSettings (args: InferenceArgs, gguf: boolean): Settings {
  const d = SAMPLING_DEFAULTS[gguf ? 'gguf' : 'llama2c']
  const maxTokens = args['max-tokens']
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InferenceSettingError(`--max-tokens is ${maxTokens}; it must be a whole number of at least 1`)
  const threads = args.threads ?? os.availableParallelism()
  if (!Number.isInteger(threads) || threads < 1) throw new InferenceSettingError(`--threads is ${threads}; it must be a whole number of at least 1`)
  const seedText = args.seed ?? String(Date.now())
  if (!/^\d+$/.test(seedText)) throw new InferenceSettingError(`--seed is ${JSON.stringify(seedText)}; use an integer from 1 to 2^64-1`)
  // temperature, top-p and the seed's range are checked by the sampler itself
  return {
    maxTokens,
    temperature: args.temperature ?? d.temperature,
    topP: args['top-p'] ?? d.topP,
    topK: args['top-k'] ?? d.topK,
    minP: args['min-p'] ?? d.minP,
    seed: BigInt(seedText),
    threads
  }
}
