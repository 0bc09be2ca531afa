/**
 * The root of every error mesh expects: a user mistake, bad input or a broken file.
 * The CLI prints `mesh: <message>` and exits with `exitCode`, never a stack trace;
 * anything that is not a MeshError is a bug and is shown with its stack.
 * Modules subclass it, one class per distinct failure, so callers and tests match on the class.
 */
export class MeshError extends Error {
  readonly exitCode: number = 1
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
}

/** A flag or argument is missing or malformed (exit code 2, like a usage error). */
export class UsageError extends MeshError {
  override readonly exitCode: number = 2
}

/** A feature whose issue has not landed yet. */
export class NotImplementedError extends MeshError {
  override readonly exitCode: number = 2
}
