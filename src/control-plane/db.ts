/**
 * Open the control plane's SQLite store: WAL journal, synchronous=FULL (a 2xx answer means the row
 * is on disk), foreign keys on, migrations applied in order.
 *
 * Exports: DB_FILE_NAME, dbFile, openDatabase, schemaVersion, Database.
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { DatabaseError, DatabaseTooNewError } from './errors.js'
import { MIGRATIONS, type Migration } from './migrations.js'

export type { Database } from 'better-sqlite3'

export const DB_FILE_NAME = 'control-plane.sqlite'

export function dbFile (home: string): string { return path.join(home, DB_FILE_NAME) }

export function schemaVersion (db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number
}

/** Apply the migrations the store lacks; refuse a store from a newer version. */
function migrate (db: Database.Database, file: string, migrations: readonly Migration[]): void {
  const current = schemaVersion(db)
  if (current > migrations.length) throw new DatabaseTooNewError(file, current, migrations.length)
  for (const m of migrations.slice(current)) {
    db.transaction(() => {
      db.exec(m.sql)
      db.pragma(`user_version = ${m.version}`)
    }).immediate()
  }
}

/** The store under `home` (created if absent). DatabaseError names the file when it is unusable. */
export function openDatabase (home: string, migrations: readonly Migration[] = MIGRATIONS): Database.Database {
  const file = dbFile(home)
  fs.mkdirSync(home, { recursive: true })
  let db: Database.Database | undefined
  try {
    db = new Database(file)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = ON')
    // a second process (e.g. an inspecting test) may hold the write lock briefly
    db.pragma('busy_timeout = 5000')
    migrate(db, file, migrations)
    return db
  } catch (err) {
    db?.close()
    if (err instanceof DatabaseError) throw err
    const problem = err instanceof Error ? err.message : String(err)
    throw new DatabaseError(file, `${problem}; move the file aside to start with an empty store`, { cause: err })
  }
}
