import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { compressionFromId, decodeRecords, decompress } from '../../agent/envelope/codec.ts';

/** What survived in a queue file after a cut, checked against what the source was told was committed. */
export interface QueueCheck {
  /** `PRAGMA integrity_check` ('ok', or SQLite's first complaints, or the error opening the file). */
  integrity: string;
  /** The source's committed cursor (the synthetic source's last record number), 0 when none. */
  cursor: number;
  /** Records of the stream found in the queue's chunks. */
  records: number;
  /** Acked records (n ≤ the last logged) missing from the queue: max(0, lastAcked − cursor). */
  lost: number;
  /** Everything that contradicts the queue's contract; empty when the queue is right. */
  problems: string[];
}

/**
 * Checks a queue that nothing has drained (its sink was never reachable): the chunks of `stream` must hold
 * exactly the records 1…cursor, in order, once each; the cursor must be at least `lastAcked` (what the
 * source logged as committed) and at least `previousCursor` (what survived the previous cut); SQLite must
 * find the file intact and nothing may have been dropped. Works on a copy, so the queue the agent reopens
 * next is the one the cut left, WAL and all.
 */
export function checkQueue(dbPath: string, opts: { source: string; stream: string; lastAcked: number; previousCursor: number }): QueueCheck {
  const scratch = mkdtempSync(join(tmpdir(), 'powercut-check-'));
  const copy = join(scratch, 'queue.db');
  const problems: string[] = [];
  try {
    if (!existsSync(dbPath)) {
      const lost = opts.lastAcked;
      if (opts.previousCursor > 0) problems.push(`queue file ${dbPath} does not exist after the cut`);
      return { integrity: 'missing', cursor: 0, records: 0, lost, problems };
    }
    // The -shm file is scratch space SQLite rebuilds from the WAL; the database and its WAL are the queue.
    copyFileSync(dbPath, copy);
    if (existsSync(`${dbPath}-wal`)) copyFileSync(`${dbPath}-wal`, `${copy}-wal`);
    let db: Database.Database;
    try {
      db = new Database(copy);
    } catch (err) {
      problems.push(`queue does not open: ${(err as Error).message}`);
      return { integrity: (err as Error).message, cursor: 0, records: 0, lost: opts.lastAcked, problems };
    }
    try {
      return inspect(db, opts, problems);
    } catch (err) {
      problems.push(`queue cannot be read: ${(err as Error).message}`);
      return { integrity: (err as Error).message, cursor: 0, records: 0, lost: opts.lastAcked, problems };
    } finally {
      db.close();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function inspect(db: Database.Database, opts: { source: string; stream: string; lastAcked: number; previousCursor: number }, problems: string[]): QueueCheck {
  const integrity = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
  if (integrity !== 'ok') problems.push(`integrity_check: ${integrity}`);
  const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]);
  if (!tables.has('chunks') || !tables.has('cursors')) {
    // Nothing of the queue reached the disk yet (synchronous=normal before its first checkpoint): a loss,
    // counted as such, but a consistent state, unless an earlier cut had already found data here.
    const lost = opts.lastAcked;
    if (opts.previousCursor > 0) problems.push(`queue has no tables (have: ${[...tables].join(', ') || 'none'})`);
    return { integrity, cursor: 0, records: 0, lost, problems };
  }
  const rawCursor = db.prepare('SELECT value FROM cursors WHERE source = ?').pluck().get(opts.source) as string | undefined;
  const cursor = rawCursor === undefined ? 0 : (JSON.parse(rawCursor) as number);
  if (typeof cursor !== 'number') problems.push(`cursor of ${opts.source} is not a number: ${rawCursor}`);
  if (cursor < opts.previousCursor) problems.push(`cursor went back from ${opts.previousCursor} (survived the previous cut) to ${cursor}`);

  let expected = 1;
  let records = 0;
  const rows = db
    .prepare('SELECT c.id, c.count, c.codec, c.payload FROM chunks c JOIN streams s ON s.id = c.stream_id WHERE s.name = ? ORDER BY c.id')
    .iterate(opts.stream) as IterableIterator<{ id: number; count: number; codec: number; payload: Buffer }>;
  for (const row of rows) {
    const compression = compressionFromId(row.codec);
    if (!compression) {
      problems.push(`chunk ${row.id} has unknown codec ${row.codec}`);
      break;
    }
    const decoded = decodeRecords(decompress(row.payload, compression, Number.MAX_SAFE_INTEGER));
    if (decoded.length !== row.count) problems.push(`chunk ${row.id} says ${row.count} records and holds ${decoded.length}`);
    for (const record of decoded) {
      const n = record.n as number;
      if (n !== expected) {
        problems.push(`chunk ${row.id}: record n=${n} where n=${expected} was due (${n < expected ? 'duplicate' : `gap of ${n - expected}`})`);
        return { integrity, cursor, records: records + decoded.length, lost: Math.max(0, opts.lastAcked - cursor), problems };
      }
      expected++;
      records++;
    }
  }
  if (records !== cursor) problems.push(`the queue holds records 1…${records} but the cursor says ${cursor}`);
  const drops = db.prepare('SELECT stream, reason, records FROM drops').all() as { stream: string; reason: string; records: number }[];
  for (const d of drops) problems.push(`${d.records} records of ${d.stream} dropped (${d.reason}): the check needs a queue that drops nothing`);
  return { integrity, cursor, records, lost: Math.max(0, opts.lastAcked - cursor), problems };
}
