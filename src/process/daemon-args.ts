/**
 * The command line shared by the standalone daemons (mesh-relay, mesh-control-plane): one command,
 * `--home`, `--json`, `--log-level`, strict flags, `--help`, and every parse failure a UsageError,
 * so `reportError` prints one line and exits 2. Each daemon adds its own options to the parser.
 *
 * Exports: daemonArgs.
 */
import yargs, { type Argv } from 'yargs'
import { UsageError } from '../errors.js'
import { defaultHome } from './io.js'

export function daemonArgs (argv: string[], name: string, usage: string, homeHolds: string, jsonPrints: string): Argv<{ 'home': string, 'json': boolean, 'log-level': string }> {
  return yargs(argv)
    .scriptName(name)
    .usage(`$0 [options]\n\n${usage}`)
    .option('home', { type: 'string', default: defaultHome(), defaultDescription: '$MESH_HOME or ~/.meshnet', describe: `state directory: ${homeHolds}` })
    .option('json', { type: 'boolean', default: false, describe: `print ${jsonPrints} as JSON` })
    .option('log-level', { type: 'string', choices: ['debug', 'info', 'warn', 'error'], default: process.env.MESH_LOG_LEVEL ?? 'info', describe: 'log level (env MESH_LOG_LEVEL)' })
    .strict()
    .help()
    .alias('h', 'help')
    .version(false)
    .exitProcess(false)
    .fail((msg, err) => { throw err ?? new UsageError(msg) })
}
