/**
 * A queue file as the operator's tools see it (`edge-agent queue …`, docs/operations.md "Queue tools"): its
 * own connection beside a running agent, or the only one on a stopped or quarantined file. Never the Queue
 * facade: a tool must not take the file over (mark it running, draw an epoch, expire rows).
 *
 * Why a second connection is safe: the queue runs SQLite in WAL mode, so a reader sees a consistent snapshot
 * while the agent writes, and a tool's write transactions are kept to a few rows (`WRITE_SLICE`) so the agent
 * waits at most one of them (SQLite's busy handler) before its own commit goes through. The agent notices the
 * change by `data_version` and rebuilds its view (queue.ts).
 */
import { existsSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { AgentError } from '../errors.ts';
import { openDatabase } from '../util/sqlite.ts';

/** Chunks deleted or inserted per write transaction (a chunk holds up to batch.max_records records): few, so each transaction holds the agent's commits back for a millisecond or two. */
export const WRITE_SLICE = 8;

export interface ToolFile {
  readonly db: Database.Database;
  readonly path: string;
  /** The queue's epoch as 16 hex digits ('' when the file has none: not ours, or damaged). */
  readonly epoch: string;
  /** Stream id → name. */
  readonly streams: Map<number, string>;
  close(): void;
}

/** Opens a queue file for a tool; `write` for purge and replay. Never creates a file. */
export function openToolFile(path: string, options: { write: boolean }): ToolFile {
  if (!existsSync(path)) throw new AgentError('USAGE', `no queue file at ${path}`);
  let db: Database.Database;
  try {
    db = openDatabase(path, { readonly: !options.write, fileMustExist: true });
    // Waits for the agent's commit (a few ms) instead of failing; the agent waits for ours the same way.
    db.pragma('busy_timeout = 5000');
    // A tool reads each row once: no point caching pages the agent's connection caches anyway.
    db.pragma('cache_size = -512');
    // A tool's commit must not hold the write lock through an fsync (the agent waits for that lock): its
    // writes are synced by the checkpoint at the end (`syncWrites`). A power cut before it rolls back a purge
    // or a replay together with its purge-log rows, so the same command simply runs again.
    if (options.write) db.pragma('synchronous = NORMAL');
  } catch (cause) {
    throw new AgentError('QUEUE_OPEN_FAILED', `cannot open queue file ${path}`, { cause });
  }
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    for (const t of ['streams', 'chunks', 'batches', 'meta']) {
      if (!tables.includes(t))
        throw new AgentError('QUEUE_OPEN_FAILED', `${path} is not an edge-agent queue (no ${t} table); for a damaged file use edge-agent queue salvage`);
    }
    const epoch = db.prepare("SELECT value FROM meta WHERE key = 'epoch'").pluck().get() as Buffer | undefined;
    const streams = new Map<number, string>();
    for (const row of db.prepare('SELECT id, name FROM streams').all() as { id: number; name: string }[]) streams.set(row.id, row.name);
    return { db, path, epoch: epoch ? Buffer.from(epoch).toString('hex') : '', streams, close: () => db.close() };
  } catch (cause) {
    db.close();
    if (cause instanceof AgentError) throw cause;
    throw new AgentError('QUEUE_OPEN_FAILED', `cannot read queue file ${path}; for a damaged file use edge-agent queue salvage`, { cause });
  }
}

/** Makes a tool's writes durable (see openToolFile): a passive checkpoint, which never waits for the agent. */
export function syncWrites(file: ToolFile): void {
  file.db.pragma('wal_checkpoint(PASSIVE)');
}

/**
 * The purge log: which batches and chunks `queue purge` took out of this file, by their first chunk id. Replay
 * puts back only what is logged here (and forgets it as it does), so export → purge → replay neither loses a
 * record nor sends one twice, and a second replay of the same export adds nothing. Kept in the queue file
 * (as remote control keeps its command states) so it shares the file's fate and its epoch.
 */
export function ensurePurgeLog(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS tool_purged (
    stream      TEXT NOT NULL,
    first_chunk INTEGER NOT NULL,
    seq         INTEGER,                 -- the batch's sequence; NULL for records not yet in a batch
    at          INTEGER NOT NULL,
    PRIMARY KEY (stream, first_chunk)
  ) WITHOUT ROWID`);
}

/**
 * Whether the file's chunks carry their CRC-32 (agent/queue/schema.ts): a queue an older build made, and this
 * one never opened, has no such column. A file too damaged to say has none either (nothing is checked).
 */
export function hasChunkChecksums(db: Database.Database): boolean {
  try {
    return (db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('chunks') as string[]).includes('crc32');
  } catch {
    return false;
  }
}
