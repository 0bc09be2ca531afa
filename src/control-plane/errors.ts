/**
 * Errors of mesh-control-plane that reach its command line (one class per failure).
 *
 * Exports: PortBusyError, NoFreePortError, ListenError, DatabaseError, DatabaseTooNewError.
 */
import { MeshError } from '../errors.js'

/** An explicit --port is taken by another process. */
export class PortBusyError extends MeshError {
  constructor (readonly host: string, readonly port: number) {
    super(`port ${port} on ${host} is already in use; stop what uses it or pick another --port`)
  }
}

/** Every port of the automatic range is taken. */
export class NoFreePortError extends MeshError {
  constructor (readonly host: string, readonly first: number, readonly last: number) {
    super(`ports ${first}-${last} on ${host} are all in use; pass a free --port`)
  }
}

/** Binding failed for another reason (no permission for a low port, an address not on this host). */
export class ListenError extends MeshError {
  constructor (readonly host: string, readonly port: number, problem: string) {
    super(`cannot listen on ${host}:${port}: ${problem}; check --host and --port`)
  }
}

/** The SQLite store cannot be opened or is damaged. */
export class DatabaseError extends MeshError {
  constructor (readonly file: string, problem: string, options?: ErrorOptions) {
    super(`control-plane database ${file}: ${problem}`, options)
  }
}

/** The store was written by a newer version (its schema is ahead of ours): refuse rather than guess. */
export class DatabaseTooNewError extends DatabaseError {
  constructor (file: string, found: number, known: number) {
    super(file, `schema version ${found} is newer than this mesh-control-plane knows (${known}); upgrade mesh`)
  }
}
