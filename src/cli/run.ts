import yargs, { type CommandModule } from 'yargs'
import { UsageError } from '../errors.js'
import { reportError } from '../process/report-error.js'
import { commands } from './commands.js'
import { defaultHome, type CliIO, type GlobalArgs } from '../process/io.js'
import { meshVersion } from './version.js'

/**
 * Parse argv, run one command, and turn its outcome into an exit code.
 * Only here do errors become exit codes: a MeshError prints one line, anything else is a bug
 * and keeps its stack.
 */
export async function runCli (argv: string[], io: CliIO, scriptName = 'mesh'): Promise<number> {
  let parser = yargs(argv)
    .scriptName(scriptName)
    .usage('$0 <command> [options]\n\nRun a language model across the devices of your LAN.')
    .option('home', {
      type: 'string',
      describe: 'state directory (env MESH_HOME)',
      default: defaultHome(),
      defaultDescription: '$MESH_HOME or ~/.meshnet',
      global: true
    })
    .option('json', { type: 'boolean', describe: 'print machine-readable JSON', default: false, global: true })
    .demandCommand(1, 'say which command to run (see mesh --help)')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version(meshVersion())
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err !== undefined && err !== null) throw err
      throw new UsageError(usageMessage(msg, argv, modules.map(commandName)))
    })
  const modules = commands.map(command => command(io))
  for (const module of modules) parser = parser.command(module)

  try {
    await parser.parseAsync()
    return 0
  } catch (err) {
    return reportError(err, io, scriptName)
  }
}

function commandName (module: CommandModule<GlobalArgs, any>): string {
  return String([module.command ?? ''].flat()[0] ?? '').split(' ')[0] ?? ''
}

/** The first word of argv that is not a global flag or its value: what the user meant as the command. */
function typedCommand (argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === '--home') { i++; continue }
    if (!a.startsWith('-')) return a
  }
  return undefined
}

/** yargs' message as one line; an unknown command says so (with yargs' suggestion, if any). */
function usageMessage (msg: string, argv: string[], known: string[]): string {
  const typed = typedCommand(argv)
  const oneLine = msg.replace(/\s*\n\s*/g, ' ').trim()
  if (typed !== undefined && !known.includes(typed) && /^(Did you mean|Unknown argument)/.test(oneLine)) {
    const hint = oneLine.startsWith('Did you mean') ? ` ${oneLine.replace(/^Did/, 'did')}` : ''
    return `unknown command "${typed}";${hint} see mesh --help`
  }
  return oneLine
}
