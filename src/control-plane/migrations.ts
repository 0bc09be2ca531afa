/**
 * The store's schema as an append-only list of migrations. `PRAGMA user_version` holds the number
 * of migrations applied; each runs in its own transaction with the version bump, so a crash leaves
 * the store at one version or the next, never between. Never edit a shipped migration: add one.
 *
 * Exports: Migration, MIGRATIONS.
 */

export interface Migration {
  /** 1-based, equal to its index + 1 */
  readonly version: number
  readonly name: string
  readonly sql: string
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'pools, devices, ring members, nonces, jobs',
    sql: `
      -- a pool is known once a member registered it with the root public key its Pool ID derives from
      CREATE TABLE pools (
        pool_id          TEXT PRIMARY KEY,
        root_public_key  BLOB NOT NULL,
        registered_at    INTEGER NOT NULL,
        ring_epoch       INTEGER NOT NULL DEFAULT 0,
        ring_hash        TEXT,
        ring_changed_at  INTEGER
      ) STRICT;

      -- every device that made an authenticated request, with the certificate it last showed
      CREATE TABLE devices (
        pool_id          TEXT NOT NULL REFERENCES pools (pool_id),
        node_id          TEXT NOT NULL,
        name             TEXT NOT NULL,
        public_key       BLOB NOT NULL,
        cert_serial      TEXT NOT NULL,
        cert_not_after   INTEGER NOT NULL,
        registered_at    INTEGER NOT NULL,
        last_seen_at     INTEGER NOT NULL,
        PRIMARY KEY (pool_id, node_id)
      ) STRICT;

      -- members of the HTTP ring (the "legacy HTTP-based ring join")
      CREATE TABLE ring_members (
        pool_id            TEXT NOT NULL,
        node_id            TEXT NOT NULL,
        weight             INTEGER NOT NULL,
        addresses          TEXT NOT NULL,
        joined_at          INTEGER NOT NULL,
        last_heartbeat_at  INTEGER NOT NULL,
        PRIMARY KEY (pool_id, node_id),
        FOREIGN KEY (pool_id, node_id) REFERENCES devices (pool_id, node_id)
      ) STRICT;

      -- request nonces seen inside the timestamp window, so a replay is refused even after a restart
      CREATE TABLE nonces (
        public_key  BLOB NOT NULL,
        nonce       TEXT NOT NULL,
        expires_at  INTEGER NOT NULL,
        PRIMARY KEY (public_key, nonce)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX nonces_by_expiry ON nonces (expires_at);

      CREATE TABLE jobs (
        job_id       TEXT PRIMARY KEY,
        pool_id      TEXT NOT NULL REFERENCES pools (pool_id),
        submitter    TEXT NOT NULL,
        request      TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
        claimed_by   TEXT,
        lease_until  INTEGER,
        result       TEXT,
        error        TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX jobs_by_queue ON jobs (pool_id, state, created_at);

      CREATE TABLE job_tokens (
        job_id  TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        seq     INTEGER NOT NULL,
        text    TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
      ) STRICT, WITHOUT ROWID;
    `
  },
  {
    version: 2,
    name: 'revocation list per pool',
    sql: `
      -- the newest root-signed revocation list a member uploaded (verified before it is stored)
      ALTER TABLE pools ADD COLUMN revocation BLOB;
    `
  }
]
