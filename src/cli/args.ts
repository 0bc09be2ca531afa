import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs'
import { UsageError } from '../errors.js'
import type { GlobalArgs } from '../process/io.js'

/**
 * One string flag as typed. yargs turns a repeated flag into an array and a bare flag into '';
 * both are usage errors here rather than a silent pick.
 * `env` names the environment variable that may supply it (its value was put in `default`).
 */
export function requiredString (value: unknown, flag: string, env?: string): string {
  if (Array.isArray(value)) throw new UsageError(`--${flag} is given more than once; give it once`)
  if (value === undefined || value === '') {
    throw new UsageError(`missing --${flag}${env !== undefined ? ` (or set ${env})` : ''}; see --help`)
  }
  return String(value)
}

export function optionalString (value: unknown, flag: string): string | undefined {
  return value === undefined ? undefined : requiredString(value, flag)
}

/** A repeatable string flag: [] when absent. */
export function optionalStrings (value: unknown, flag: string): string[] {
  if (value === undefined) return []
  return (Array.isArray(value) ? value : [value]).map((v) => requiredString(v, flag))
}

/** A positive number of seconds, or undefined when the flag is absent. */
export function optionalSeconds (value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new UsageError(`--${flag} must be a positive number of seconds (e.g. --${flag} 60)`)
  }
  return value
}

/** The default of a flag that an environment variable may supply; empty counts as unset. */
export function fromEnv (name: string): string | undefined {
  const v = process.env[name]
  return v === undefined || v === '' ? undefined : v
}

/**
 * A yargs handler over parsed args whose own flags are typed `unknown` (checked by the helpers above),
 * so the one cast here promises no more than yargs delivers.
 */
export function handler<A extends Record<string, unknown>> (fn: (args: GlobalArgs & A) => void | Promise<void>): (argv: ArgumentsCamelCase) => void | Promise<void> {
  return (argv) => fn(argv as unknown as GlobalArgs & A)
}

/**
 * A command that only holds subcommands (`mesh NAME SUB …`): yargs asks for one of them. Each
 * subcommand types its own flags, so the list takes any module over the global ones.
 */
export function commandGroup (name: string, describe: string, subcommands: ReadonlyArray<CommandModule<GlobalArgs, any>>): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: name,
    describe,
    builder: (y: Argv<GlobalArgs>) => subcommands.reduce((argv, c) => argv.command(c), y).demandCommand(1, `say which ${name} command to run (see mesh ${name} --help)`),
    handler: () => {}
  }
}
