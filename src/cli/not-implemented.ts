import { hideBin } from 'yargs/helpers'
import { processIO } from './io.js'

/** Entry point of an executable whose issue has not landed: --help says so, anything else exits 2. */
export function notImplementedMain (name: string, what: string): void {
  const args = hideBin(process.argv)
  if (args.includes('--help') || args.includes('-h')) {
    processIO.out(`${name}: ${what}\n\nNot implemented yet in this version of mesh.`)
    return
  }
  processIO.err(`${name}: not implemented yet (${what})`)
  process.exitCode = 2
}
