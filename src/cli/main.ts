/** The `mesh` CLI: parse argv, run one command, exit with its code. dist/cli/mesh.js starts it. */
import '../polyfill.js'
import { hideBin } from 'yargs/helpers'
import { processIO } from '../process/io.js'
import { runCli } from './run.js'

process.exitCode = await runCli(hideBin(process.argv), processIO)
