import { MeshError } from '../errors.js'
import type { CliIO } from './io.js'

/** A thrown error as one line on stderr and its exit code; shared by every executable's entry point. */
export function reportError (err: unknown, io: CliIO, scriptName: string): number {
  if (err instanceof MeshError) {
    io.err(`${scriptName}: ${err.message}`)
    return err.exitCode
  }
  io.err(`${scriptName}: internal error (please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  return 70
}
