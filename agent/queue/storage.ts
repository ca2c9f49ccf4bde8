/**
 * The queue's SQL: opening and configuring the file, the prepared statements, the reads that rebuild the
 * in-memory view, and the clean-close mark. Kept apart so every statement the queue runs is in one place
 * (the schema's only reader and writer besides recovery) and the modules above it work on rows, not SQL.
 */
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { openPrivateDatabase } from '../util/sqlite.ts';
import { migrate, SCHEMA_VERSION } from './schema.ts';
import { checkDatabase, QueueFileProblem } from './recovery.ts';
import type { DropReason, QueueOptions } from './types.ts';

// Per-chunk bookkeeping that is not payload (row header, index entry) counted against max_bytes.
export const CHUNK_OVERHEAD = 48;

/** A recorded batch: a sequence naming a contiguous range of a stream's chunks. */
export interface BatchRow {
  seq: number;
  firstChunk: number;
  lastChunk: number;
  count: number;
  created: number;
}

/** A chunk as the planner and the bounds see it: no payload. */
export interface ChunkRow {
  id: number;
  count: number;
  size: number;
  /** CBOR bytes before compression; null for chunks stored before it was recorded (or salvaged). */
  cbor: number | null;
}

export type Statements = ReturnType<typeof prepareStatements>;

/**
 * Every value the queue's reads, updates and deletes compare with is written `+?`, not `?`. SQLite (3.54,
 * better-sqlite3 13) lets the planner look at a bound value (a LIMIT, a `stream_id = ?` before an ORDER BY
 * the index gives) and then prepares the statement again, parsing and planning it anew, on the first run
 * after each new binding: at every run, since every run binds. Unary plus keeps the value out of the plan
 * and changes neither the value (it is a no-op on every type), its affinity, nor the index used (the
 * column stays bare). Measured: the payloads read 13 µs → 4 µs per run; 2.5 % of the agent's CPU went to
 * preparing statements again (docs/benchmarks.md, "Session 14: statements prepared again at every run; the
 * sum alone"). test/queue/statements-prepared-once.test.ts counts the prepares.
 */
export function prepareStatements(db: Database.Database) {
  return {
    insertStream: db.prepare('INSERT INTO streams (name) VALUES (?) RETURNING id, next_seq'),
    insertChunk: db.prepare('INSERT INTO chunks (stream_id, count, created, codec, payload, cbor_bytes, crc32) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    upsertCursor: db.prepare('INSERT INTO cursors (source, value) VALUES (?, ?) ON CONFLICT(source) DO UPDATE SET value = excluded.value'),
    deleteRange: db.prepare('DELETE FROM chunks WHERE stream_id = +? AND id BETWEEN +? AND +?'),
    deleteBatch: db.prepare('DELETE FROM batches WHERE stream_id = +? AND seq = +?'),
    oldestCreated: db.prepare('SELECT created FROM chunks WHERE stream_id = +? ORDER BY id LIMIT 1'),
    oldestChunk: db.prepare('SELECT id, count, created, length(payload) AS size, cbor_bytes AS cbor FROM chunks WHERE stream_id = +? ORDER BY id LIMIT 1'),
    rangeSizes: db.prepare(
      'SELECT coalesce(sum(count), 0) AS records, coalesce(sum(length(payload)), 0) AS bytes, count(*) AS chunks FROM chunks WHERE stream_id = +? AND id BETWEEN +? AND +?',
    ),
    chunksBetween: db.prepare(
      'SELECT id, count, length(payload) AS size, cbor_bytes AS cbor FROM chunks WHERE stream_id = +? AND id > +? AND id < +? ORDER BY id LIMIT +?',
    ),
    newestAfter: db.prepare(
      'SELECT id, count, length(payload) AS size, cbor_bytes AS cbor FROM chunks WHERE stream_id = +? AND id > +? ORDER BY id DESC LIMIT +?',
    ),
    insertBatch: db.prepare('INSERT INTO batches (stream_id, seq, first_chunk, last_chunk, count, created) VALUES (?, ?, ?, ?, ?, ?)'),
    updateStream: db.prepare('UPDATE streams SET next_seq = ? WHERE id = +?'),
    payloads: db.prepare('SELECT id, codec, payload, created, cbor_bytes AS cbor, crc32 FROM chunks WHERE stream_id = +? AND id BETWEEN +? AND +? ORDER BY id'),
    upsertDrops: db.prepare(
      'INSERT INTO drops (stream, reason, records) VALUES (?, ?, ?) ON CONFLICT(stream, reason) DO UPDATE SET records = excluded.records',
    ),
  };
}

/** Everything the in-memory view is rebuilt from. */
export interface StoredView {
  streams: { id: number; name: string; next_seq: number }[];
  sizes: { stream_id: number; records: number; bytes: number; chunks: number }[];
  batches: { stream_id: number; seq: number; first_chunk: number; last_chunk: number; count: number; created: number }[];
  cursors: { source: string; value: string }[];
  drops: { stream: string; reason: DropReason; records: number }[];
}

/** Reads the database, which is the truth, for the in-memory view (at open and after a failed write). */
export function readStoredView(db: Database.Database): StoredView {
  return {
    streams: db.prepare('SELECT id, name, next_seq FROM streams').all() as StoredView['streams'],
    sizes: db
      .prepare('SELECT stream_id, sum(count) AS records, sum(length(payload)) AS bytes, count(*) AS chunks FROM chunks GROUP BY stream_id')
      .all() as StoredView['sizes'],
    batches: db.prepare('SELECT stream_id, seq, first_chunk, last_chunk, count, created FROM batches ORDER BY stream_id, seq').all() as StoredView['batches'],
    cursors: db.prepare('SELECT source, value FROM cursors').all() as StoredView['cursors'],
    drops: db.prepare('SELECT stream, reason, records FROM drops').all() as StoredView['drops'],
  };
}

/**
 * Opens and configures the queue file, checks it and brings its schema up to date; returns the database
 * and the queue's epoch. Closes the file again if any of that fails.
 */
export function openStore(opts: QueueOptions): { db: Database.Database; epoch: Uint8Array; cleanStart: boolean } {
  let db: Database.Database | undefined;
  try {
    db = openPrivateDatabase(opts.path);
    // 1 KiB pages for a new file (an existing one keeps its size): a small commit appends fewer bytes of
    // WAL frames, the cost that dominates flash wear at low ingest rates (measured: half the bytes written
    // per record at 1k rec/s). Only takes effect before the first table exists.
    db.pragma(`page_size = ${opts.pageSize ?? 1024}`);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    // better-sqlite3's default cache is 16 MB; a gateway has better uses for that memory.
    db.pragma(`cache_size = -${Math.max(64, Math.floor(opts.cacheBytes / 1024))}`);
    // After a checkpoint the WAL shrinks back to this: one burst must not keep megabytes of disk forever.
    db.pragma('journal_size_limit = 4194304');
    // Check the whole file only after an unclean stop: reading every page of a large queue at each
    // start would cost an SD card seconds.
    const cleanStart = cleanlyClosed(db);
    checkDatabase(db, SCHEMA_VERSION, !cleanStart);
    const epoch = migrate(db, () => new Uint8Array(randomBytes(8)));
    // With synchronous normal the mark "running" (clean = 0) must be on disk before any batch leaves: a power
    // cut that took it would make the next start look clean, and batch sequences would continue from the
    // rolled-back file instead of from the sequence mark (sequences.ts).
    if (cleanStart && opts.synchronous !== 'full') checkpointWal(db);
    return { db, epoch, cleanStart };
  } catch (cause) {
    db?.close();
    throw cause;
  }
}

/** True when the previous run closed this file (and so wrote everything it meant to). */
function cleanlyClosed(db: Database.Database): boolean {
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").pluck().get();
  if (!hasMeta) return true; // a new, empty file
  return db.prepare("SELECT value FROM meta WHERE key = 'clean'").pluck().get() === 1;
}

/** Marks the file as cleanly closed, so the next open skips the whole-file check. */
export function markClean(db: Database.Database): void {
  db.prepare("INSERT INTO meta (key, value) VALUES ('clean', 1) ON CONFLICT(key) DO UPDATE SET value = 1").run();
}

/** Syncs the WAL without waiting for readers (which a passive checkpoint never does). */
export function checkpointWal(db: Database.Database): void {
  db.pragma('wal_checkpoint(PASSIVE)');
}

/** SQLite error codes that mean the file itself is bad (as opposed to the disk, permissions or space). */
const CORRUPTION_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CORRUPT_VTAB', 'SQLITE_CORRUPT_SEQUENCE', 'SQLITE_CORRUPT_INDEX']);

/** What is wrong with the file, if `err` says the file is damaged; undefined for any other failure. */
export function corruptionOf(err: unknown): string | undefined {
  if (err instanceof QueueFileProblem) return err.message;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && CORRUPTION_CODES.has(code)) return `${code}: ${(err as Error).message}`;
  return undefined;
}
