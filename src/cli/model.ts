import type { Argv, CommandModule } from 'yargs'
import { UsageError } from '../errors.js'
import { loadCheckpoint } from '../inference/checkpoint.js'
import { parameterCount, type CheckpointVersion, type ModelConfig } from '../inference/config.js'
import { InferenceSettingError } from '../inference/errors.js'
import { parseShape, SHAPES, writeSyntheticCheckpoint } from '../inference/synth.js'
import type { MeshCommand } from './commands.js'
import type { CliIO, GlobalArgs } from './io.js'
import { byteProgress } from './progress.js'

interface SynthArgs extends GlobalArgs { shape: string, out: string, format: string, seed: string, 'unshared-classifier': boolean }
interface InfoArgs extends GlobalArgs { model: string }

export const modelCommand: MeshCommand = (io) => ({
  command: 'model',
  describe: 'inspect llama2.c checkpoints, or write random-weight ones of any shape',
  builder: (y: Argv<GlobalArgs>) => y
    .command(synthCommand(io))
    .command(infoCommand(io))
    .demandCommand(1, 'say which model command to run (see mesh model --help)'),
  handler: () => {}
})

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
  describe: 'show a checkpoint\'s shape, size and identity',
  builder: (s: Argv<GlobalArgs>) => s.option('model', { type: 'string', demandOption: true, describe: 'llama2.c checkpoint' }),
  handler: async (args) => { await info(args, io) }
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
