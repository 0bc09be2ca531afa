import { readFile } from 'node:fs/promises'
import os from 'node:os'
import type { Argv, CommandModule } from 'yargs'
import { UsageError } from '../errors.js'
import { loadCheckpoint } from '../inference/checkpoint.js'
import { parameterCount, type CheckpointVersion, type ModelConfig } from '../inference/config.js'
import { InferenceSettingError } from '../inference/errors.js'
import { isGgufFile } from '../inference/gguf/reader.js'
import type { EngineName } from '../inference/model.js'
import { parseShape, SHAPES, writeSyntheticCheckpoint } from '../inference/synth.js'
import { bundledModelFile } from './bundled-model.js'
import { ggufEngine } from './inference-gguf.js'
import { commandGroup } from './args.js'
import type { MeshCommand } from './commands.js'
import type { CliIO, GlobalArgs } from '../process/io.js'
import { byteProgress, countProgress } from './progress.js'

interface SynthArgs extends GlobalArgs { shape: string, out: string, format: string, seed: string, 'unshared-classifier': boolean }
interface InfoArgs extends GlobalArgs { model: string }
interface PerplexityArgs extends GlobalArgs { model?: string, tokenizer?: string, file: string, ctx: number, engine?: string, threads?: number }

export const modelCommand: MeshCommand = (io) => commandGroup('model', 'inspect GGUF models and llama2.c checkpoints, measure perplexity, or write random-weight checkpoints of any shape', [synthCommand(io), infoCommand(io), perplexityCommand(io)])

const synthCommand = (io: CliIO): CommandModule<GlobalArgs, SynthArgs> => ({
  command: 'synth',
  describe: 'write a llama2.c checkpoint with random weights (normal, std 0.02; norms 1.0) for performance work',
  builder: (s: Argv<GlobalArgs>) => s
    .option('shape', { type: 'string', demandOption: true, describe: `${Object.keys(SHAPES).join(', ')}, or dim=…,hidden=…,layers=…,heads=…,kv_heads=…,vocab=…,seq_len=…` })
    .option('out', { type: 'string', demandOption: true, describe: 'file to write (must not exist)' })
    .option('format', { type: 'string', default: 'v0', choices: ['v0', 'v1'], describe: 'llama2.c legacy fp32 (v0, what run.c reads) or v1 fp32' })
    .option('seed', { type: 'string', default: '42', describe: 'random seed: the same seed writes the same file' })
    .option('unshared-classifier', { type: 'boolean', default: false, describe: 'store a separate classifier instead of sharing the embedding' }),
  handler: async (args) => { await synth(args, io) }
})

const infoCommand = (io: CliIO): CommandModule<GlobalArgs, InfoArgs> => ({
  command: 'info',
  describe: 'show a model\'s architecture, shape, quantization, tokenizer, size and sha256',
  builder: (s: Argv<GlobalArgs>) => s.option('model', { type: 'string', demandOption: true, describe: 'GGUF file or llama2.c checkpoint' }),
  handler: async (args) => { await info(args, io) }
})

const perplexityCommand = (io: CliIO): CommandModule<GlobalArgs, PerplexityArgs> => ({
  command: 'perplexity',
  describe: 'perplexity of a text as llama.cpp\'s llama-perplexity computes it (chunks of --ctx tokens starting with BOS, the second half of each scored)',
  builder: (s: Argv<GlobalArgs>) => s
    .option('model', { type: 'string', defaultDescription: 'bundled stories260K', describe: 'GGUF file or llama2.c checkpoint' })
    .option('tokenizer', { type: 'string', defaultDescription: 'bundled tok512.bin', describe: 'llama2.c checkpoints only: tokenizer.bin' })
    .option('file', { type: 'string', demandOption: true, describe: 'UTF-8 text to score' })
    .option('ctx', { type: 'number', default: 512, describe: 'tokens per chunk (llama-perplexity -c), at most the model\'s context' })
    .option('engine', { type: 'string', choices: ['auto', 'native', 'ts', 'wasm', 'onnx'], defaultDescription: 'auto', describe: 'kernels (GGUF: native, wasm or ts)' })
    .option('threads', { type: 'number', defaultDescription: 'all cores', describe: 'threads for the kernels' }),
  handler: async (args) => { await perplexityOf(args, io) }
})

async function synth (args: SynthArgs, io: CliIO): Promise<void> {
  if (!/^\d+$/.test(args.seed) || BigInt(args.seed) === 0n) throw new InferenceSettingError(`--seed is ${JSON.stringify(args.seed)}; use a positive integer`)
  const config = parseShape(args.shape, !args['unshared-classifier'])
  const version: CheckpointVersion = args.format === 'v1' ? 1 : 0
  const result = await writeSyntheticCheckpoint(args.out, config, version, BigInt(args.seed)).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') throw new UsageError(`${args.out} already exists; choose another --out or remove it`)
    if (err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'EISDIR' || err.code === 'ENOTDIR') throw new UsageError(`cannot write ${args.out}: ${err.code}`)
    throw err
  })
  if (args.json) io.out(JSON.stringify({ path: result.path, bytes: result.bytes, sha256: result.sha256, format: args.format, config, parameters: parameterCount(config) }))
  else io.out(`Wrote ${result.path}: ${describeShape(config)}, ${result.bytes} bytes, sha256 ${result.sha256}`)
}

async function info (args: InfoArgs, io: CliIO): Promise<void> {
  if (await isGgufFile(args.model)) { await ggufInfo(args, io); return }
  const progress = byteProgress(io, 'reading')
  const ckpt = await loadCheckpoint(args.model, { onProgress: progress.onProgress }).finally(progress.done)
  const bytes = ckpt.bytes.byteLength
  if (args.json) io.out(JSON.stringify({ path: ckpt.path, format: `v${ckpt.version}`, bytes, sha256: ckpt.sha256, config: ckpt.config, parameters: parameterCount(ckpt.config) }))
  else io.out(`${ckpt.path}: llama2.c v${ckpt.version}, ${describeShape(ckpt.config)}, ${bytes} bytes, sha256 ${ckpt.sha256}`)
}

function describeShape (c: ModelConfig): string {
  return `dim ${c.dim}, hidden ${c.hiddenDim}, ${c.nLayers} layers, ${c.nHeads} heads (${c.nKvHeads} kv), vocab ${c.vocabSize}, context ${c.seqLen}, ` +
    `${(parameterCount(c) / 1e6).toFixed(2)}M parameters, ${c.sharedClassifier ? 'shared' : 'separate'} classifier`
}

async function ggufInfo (args: InfoArgs, io: CliIO): Promise<void> {
  const [{ readGguf }, { llmConfig }, { ggufTokenizer }, { ggufSummary }, { hashFile }] = await Promise.all([
    import('../inference/gguf/reader.js'), import('../inference/gguf/architecture.js'), import('../inference/text/tokenizer.js'),
    import('../inference/gguf/summary.js'), import('../inference/files.js')
  ])
  const file = await readGguf(args.model)
  const summary = ggufSummary(file, llmConfig(file), ggufTokenizer(file.metadata, args.model))
  const progress = byteProgress(io, 'hashing')
  const sha256 = await hashFile(args.model, progress.onProgress).finally(progress.done)
  if (args.json) {
    io.out(JSON.stringify({ path: args.model, bytes: file.fileBytes, sha256, ...summary }))
    return
  }
  const s = summary
  const t = s.tokenizer
  const token = (x: { id: number, text: string } | null): string => x === null ? 'none' : `${x.id} ${JSON.stringify(x.text)}`
  io.out([
    `${args.model}: GGUF v${s.ggufVersion}, ${file.fileBytes} bytes, sha256 ${sha256}`,
    `  model        ${s.name} (${s.architecture}), ${(s.parameters / 1e6).toFixed(2)}M parameters, context ${s.contextLength}`,
    `  shape        dim ${s.shape.dim}, ${s.shape.layers} layers, ${s.shape.heads} heads (${s.shape.kvHeads} kv, head size ${s.shape.headDim}), ffn ${s.shape.ffn}, vocab ${s.shape.vocab}, rope theta ${s.shape.ropeTheta}, ${s.shape.tiedClassifier ? 'tied' : 'separate'} classifier`,
    `  quantization ${s.fileType}; tensors ${Object.entries(s.tensorTypes).map(([k, n]) => `${k} ${n}`).join(', ')}`,
    `  tokenizer    ${t.model} (pre-tokenizer ${t.pre}), ${t.vocabSize} tokens, ${t.addBos ? 'adds' : 'no'} BOS; bos ${token(t.bos)}, eos ${token(t.eos)}`,
    `  stops at     ${t.endOfGeneration.map(token).join(', ') || 'none'}`,
    `  chat         ${s.chatTemplate ? 'template present' : 'no template'}`
  ].join('\n'))
}

async function perplexityOf (args: PerplexityArgs, io: CliIO): Promise<void> {
  const text = await readFile(args.file, 'utf8').catch((err: NodeJS.ErrnoException) => { throw new UsageError(`cannot read --file ${args.file}: ${err.code ?? err.message}`) })
  const threads = args.threads ?? os.availableParallelism()
  if (!Number.isInteger(threads) || threads < 1) throw new InferenceSettingError(`--threads is ${threads}; it must be a whole number of at least 1`)
  const modelPath = args.model ?? bundledModelFile('stories260K.bin')
  const pp = await import('../inference/llm/perplexity.js')
  let scorer: Awaited<ReturnType<typeof pp.llmScorer>>
  let tokens: number[]
  let bos: number | null
  let close = async (): Promise<void> => {}
  const progress = byteProgress(io, 'loading model')
  if (await isGgufFile(modelPath)) {
    if (args.tokenizer !== undefined) throw new UsageError(`--tokenizer does not apply to GGUF models: ${modelPath} carries its own tokenizer`)
    const engine = ggufEngine(args.engine, io)
    const { loadGguf, llmModel, llmThreads } = await import('../inference/llm/load.js')
    const g = await loadGguf(modelPath, progress.onProgress, engine).finally(progress.done)
    checkCtx(args.ctx, g.config.contextLength)
    scorer = pp.llmScorer(llmModel(g, engine, llmThreads(engine, g.config, threads)), args.ctx)
    // llama-perplexity tokenizes with BOS as the vocabulary says, special tokens not parsed
    tokens = g.tokenizer.encode(text, { addSpecial: true, parseSpecial: false })
    bos = g.tokenizer.addBos ? g.tokenizer.bos : null
  } else {
    const { autoEngineName, chooseEngine, loadModel, shardedModel } = await import('../inference/model.js')
    const { encode, BOS } = await import('../inference/tokenizer.js')
    const engineName = (args.engine === undefined || args.engine === 'auto' ? autoEngineName() : args.engine) as EngineName
    const loaded = await loadModel({ checkpointPath: modelPath, tokenizerPath: args.tokenizer ?? bundledModelFile('tok512.bin'), onProgress: progress.onProgress, forWasm: engineName === 'wasm' }).finally(progress.done)
    checkCtx(args.ctx, loaded.checkpoint.config.seqLen)
    const engine = args.engine === undefined || args.engine === 'auto' ? chooseEngine(loaded.checkpoint.config, threads) : { name: engineName, threads }
    const m = await shardedModel(loaded, engine)
    close = async () => { await m.matmuls.close() }
    scorer = pp.llama2cScorer(m, args.ctx)
    tokens = encode(loaded.tokenizer, text)
    bos = BOS
  }
  try {
    const bar = countProgress(io, 'perplexity', 'chunks')
    const result = await pp.perplexity(scorer, tokens, args.ctx, bos, bar.onProgress).finally(bar.done)
    if (args.json) io.out(JSON.stringify({ model: modelPath, file: args.file, ctx: result.ctx, chunks: result.chunks, tokens: result.tokens, scored: result.scored, ppl: result.ppl, chunk_ppl: result.chunkPpl }))
    else io.out(`perplexity ${result.ppl.toFixed(4)} over ${result.chunks} chunks of ${result.ctx} tokens (${result.scored} predictions scored; ${result.tokens} tokens in ${args.file})`)
  } finally {
    await close()
  }
}

function checkCtx (ctx: number, limit: number): void {
  if (!Number.isInteger(ctx) || ctx < 4 || ctx > limit) throw new InferenceSettingError(`--ctx is ${ctx}; it must be a whole number from 4 to the model's context of ${limit}`)
}
