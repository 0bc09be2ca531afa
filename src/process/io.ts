import os from 'node:os'
import path from 'node:path'

/** Where a command writes. Tests pass their own to capture output. */
export interface CliIO {
  out: (text: string) => void
  err: (text: string) => void
  /** true when stderr is a terminal: progress bars only then */
  isTTY: boolean
  /** raw bytes to stdout, unbuffered and without a newline (streamed tokens); absent in captures that only take text */
  write?: (bytes: Uint8Array) => void
}

export const processIO: CliIO = {
  out: (text) => { process.stdout.write(text.endsWith('\n') ? text : text + '\n') },
  err: (text) => { process.stderr.write(text.endsWith('\n') ? text : text + '\n') },
  isTTY: process.stderr.isTTY === true,
  write: (bytes) => { process.stdout.write(bytes) }
}

/** Flags every command accepts. */
export interface GlobalArgs {
  home: string
  json: boolean
}

/** MESH_HOME, default ~/.meshnet */
export function defaultHome (env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.MESH_HOME
  return fromEnv !== undefined && fromEnv !== '' ? path.resolve(fromEnv) : path.join(os.homedir(), '.meshnet')
}
