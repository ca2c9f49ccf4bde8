import type Database from 'better-sqlite3';

/**
 * The queue's tables. Records are stored in chunks: one row holds up to `batch.max_records` records of one
 * stream, CBOR-encoded and compressed at ingest, so a commit writes a few pages rather than a row (and an
 * index entry) per record, and a full chunk leaves as a batch body without being re-encoded.
 *
 * AUTOINCREMENT on chunks: ids must never be reused after the queue drains (a batch names a chunk range);
 * its cost is per row, and rows here are chunks of up to 1000 records.
 */
export const SCHEMA_VERSION = 1;

const DDL = `
CREATE TABLE IF NOT EXISTS streams (
  id           INTEGER PRIMARY KEY,
  name         TEXT NOT NULL UNIQUE,
  next_seq     INTEGER NOT NULL DEFAULT 1    -- next batch sequence; never reused
);
CREATE TABLE IF NOT EXISTS chunks (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  stream_id INTEGER NOT NULL,
  count     INTEGER NOT NULL,
  created   INTEGER NOT NULL,               -- commit time, ms; drives max_age
  codec     INTEGER NOT NULL,               -- compression id of payload (see envelope/codec.ts)
  payload   BLOB NOT NULL,                  -- compressed CBOR array of records
  cbor_bytes INTEGER,                       -- CBOR bytes before compression; NULL: not known (older build, salvage)
  crc32     INTEGER                         -- CRC-32 of payload as written; NULL: not known (older build, salvage)
);
CREATE INDEX IF NOT EXISTS chunks_by_stream ON chunks (stream_id, id);
CREATE TABLE IF NOT EXISTS batches (
  stream_id   INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  first_chunk INTEGER NOT NULL,
  last_chunk  INTEGER NOT NULL,
  count       INTEGER NOT NULL,
  created     INTEGER NOT NULL,
  PRIMARY KEY (stream_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (
  source TEXT PRIMARY KEY,
  value  TEXT NOT NULL                      -- JSON
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS drops (
  stream  TEXT NOT NULL,
  reason  TEXT NOT NULL,
  records INTEGER NOT NULL,
  PRIMARY KEY (stream, reason)
) WITHOUT ROWID;
`;

/** Creates the tables (and this queue's epoch) if missing; returns the epoch. */
export function migrate(db: Database.Database, newEpoch: () => Uint8Array): Uint8Array {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) throw new Error(`queue schema version ${version} is newer than this build understands (${SCHEMA_VERSION})`);
  return db.transaction(() => {
    db.exec(DDL);
    // Added without a version bump: a build that does not know the column reads and writes the table as
    // before (its chunks get NULL, which the planner never merges), so a rollback can still open the file.
    const columns = db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('chunks') as string[];
    if (!columns.includes('cbor_bytes')) db.exec('ALTER TABLE chunks ADD COLUMN cbor_bytes INTEGER');
    // The payload's checksum, checked when a batch is read (planner.ts): SQLite checks its own structure, not
    // the bytes of a BLOB, and a payload changed on the card would otherwise leave as another batch body.
    if (!columns.includes('crc32')) db.exec('ALTER TABLE chunks ADD COLUMN crc32 INTEGER');
    // Nothing is written that is already so: after a crash on a full disk the open must need no space.
    if (version !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    // Cleared while running, set by a clean close: the next open checks the whole file after a crash.
    if (db.prepare("SELECT value FROM meta WHERE key = 'clean'").pluck().get() !== 0) {
      db.prepare("INSERT INTO meta (key, value) VALUES ('clean', 0) ON CONFLICT(key) DO UPDATE SET value = 0").run();
    }
    const existing = db.prepare("SELECT value FROM meta WHERE key = 'epoch'").pluck().get() as Buffer | undefined;
    if (existing) return new Uint8Array(existing);
    const epoch = newEpoch();
    db.prepare("INSERT INTO meta (key, value) VALUES ('epoch', ?)").run(epoch);
    return epoch;
  })();
}
