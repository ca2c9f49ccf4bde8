import { copyFileSync, existsSync, openSync, readSync, closeSync, renameSync, rmSync, statSync, truncateSync } from 'node:fs';
import Database from 'better-sqlite3';
import { openDatabase, nativeBindingPath } from '../util/sqlite.ts';
import { compressionFromId, decodeRecords, decompress } from '../envelope/codec.ts';

/** What was found wrong with a queue file, and what could be saved from it. */
export interface RecoveryReport {
  reason: string;
  /** Where the bad file (and its WAL) now lie: renamed, never deleted. */
  quarantinedAs: string;
  salvagedChunks: number;
  salvagedRecords: number;
  /** Chunks that could not be read back; `lostRecords` counts those whose record count was still readable. */
  lostChunks: number;
  lostRecords: number;
  salvagedCursors: number;
}

export interface SalvagedChunk {
  stream: string;
  count: number;
  created: number;
  codec: number;
  payload: Buffer;
}

export interface Salvage {
  chunks: SalvagedChunk[];
  cursors: { source: string; value: string }[];
  lostChunks: number;
  lostRecords: number;
  /** Dropped-record counters carried over, so the history of drops survives the file. */
  drops: { stream: string; reason: string; records: number }[];
}

const OUR_TABLES = ['streams', 'chunks', 'batches', 'meta', 'cursors', 'drops'];

/** Thrown inside the checks; the message becomes the report's reason. */
export class QueueFileProblem extends Error {}

const WAL_MAGIC = [0x377f0682, 0x377f0683];

/**
 * SQLite silently resets a WAL whose header is invalid, dropping whatever it held; we look first, so such a
 * WAL is quarantined and reported instead. (A torn last frame after a power cut is normal and left to SQLite.)
 */
export function checkWalHeader(path: string): string | undefined {
  const wal = `${path}-wal`;
  if (!existsSync(wal) || statSync(wal).size === 0) return undefined;
  const header = Buffer.alloc(32);
  const fd = openSync(wal, 'r');
  let read: number;
  try {
    read = readSync(fd, header, 0, 32, 0);
  } finally {
    closeSync(fd);
  }
  if (read < 32) return `WAL file is truncated (${read} bytes of header)`;
  if (!WAL_MAGIC.includes(header.readUInt32BE(0))) return 'WAL file has an invalid header (not a SQLite WAL)';
  if (header.readUInt32BE(4) !== 3007000) return `WAL file has an unknown format version ${header.readUInt32BE(4)}`;
  return undefined;
}

/** Throws QueueFileProblem when the open database is not a healthy queue of ours. */
export function checkDatabase(db: Database.Database, schemaVersion: number, deep: boolean): void {
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]).filter((t) => !t.startsWith('sqlite_'));
  if (tables.length > 0 && !tables.includes('meta')) {
    throw new QueueFileProblem(`not an edge-agent queue (it holds tables ${tables.slice(0, 5).join(', ')})`);
  }
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > schemaVersion) throw new QueueFileProblem(`queue schema version ${version} is newer than this build (${schemaVersion})`);
  if (deep) {
    const result = db.pragma('quick_check', { simple: true }) as string;
    if (result !== 'ok') throw new QueueFileProblem(`integrity check failed: ${result}`);
  }
}

/** Renames the database and its WAL/SHM aside; returns the new name of the database file. */
export function quarantine(path: string, now: number): string {
  const stamp = new Date(now).toISOString().replace(/[:.]/g, '-');
  let target = `${path}.corrupt-${stamp}`;
  for (let i = 1; existsSync(target); i++) target = `${path}.corrupt-${stamp}-${i}`;
  if (existsSync(path)) renameSync(path, target);
  for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, target + suffix);
  return target;
}

/**
 * Reads back whatever can be read from a quarantined queue file, row by row, so one bad page costs the
 * chunks on it and not the whole file. Every payload is decoded to prove it is whole.
 */
export function salvage(path: string): Salvage {
  const padded = paddedCopy(path);
  try {
    return salvageFrom(padded ?? path);
  } finally {
    if (padded) for (const f of [padded, `${padded}-wal`, `${padded}-shm`]) rmSync(f, { force: true });
  }
}

/**
 * SQLite believes the page count in the file header: a file cut short reads as malformed everywhere. A
 * copy padded with zeros to the declared size makes the surviving pages readable again (the missing ones
 * then only spoil the rows on them). Undefined when the file is not short.
 */
export function paddedCopy(path: string): string | undefined {
  const header = Buffer.alloc(100);
  let size: number;
  try {
    size = statSync(path).size;
    const fd = openSync(path, 'r');
    try {
      if (readSync(fd, header, 0, 100, 0) < 100) return undefined;
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  if (header.toString('latin1', 0, 15) !== 'SQLite format 3') return undefined;
  const pageSize = header.readUInt16BE(16) === 1 ? 65536 : header.readUInt16BE(16);
  const declared = header.readUInt32BE(28) * pageSize;
  if (declared <= size || declared > 64 * 1024 ** 3) return undefined;
  const copy = `${path}.salvage-tmp`;
  copyFileSync(path, copy);
  truncateSync(copy, declared); // extends with zeros
  return copy;
}

function salvageFrom(path: string): Salvage {
  const result: Salvage = { chunks: [], cursors: [], lostChunks: 0, lostRecords: 0, drops: [] };
  let db: Database.Database;
  try {
    const nativeBinding = nativeBindingPath();
    db = new Database(path, { readonly: true, fileMustExist: true, ...(nativeBinding ? { nativeBinding } : {}) });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    if (!OUR_TABLES.every((t) => tables.includes(t))) {
      db.close();
      return result; // a foreign or empty file: nothing of ours to save
    }
  } catch {
    return result; // not even its schema can be read
  }
  try {
    const names = new Map<number, string>();
    try {
      for (const row of db.prepare('SELECT id, name FROM streams').all() as { id: number; name: string }[]) names.set(row.id, row.name);
    } catch {
      // Stream names lost: chunks are kept under a placeholder name below.
    }
    try {
      result.cursors = db.prepare('SELECT source, value FROM cursors').all() as { source: string; value: string }[];
    } catch {
      // Cursors lost: sources start from their beginning (a database source re-reads, which loses nothing).
    }
    try {
      result.drops = db.prepare('SELECT stream, reason, records FROM drops').all() as Salvage['drops'];
    } catch {
      // Drop history lost; new drops are still counted.
    }
    // Row ids are gathered from every structure that may have survived — the table's own b-tree, the
    // (stream_id, id) index, and the AUTOINCREMENT high-water mark — keeping whatever each yields before it
    // hits damage. Then each row is read on its own, so a bad page costs only the rows on it.
    const ids = new Set<number>();
    const collect = (sql: string) => {
      try {
        for (const id of db.prepare(sql).pluck().iterate() as IterableIterator<number>) ids.add(id);
      } catch {
        // Damage reached: keep the ids read so far.
      }
    };
    collect('SELECT id FROM chunks ORDER BY id');
    collect('SELECT id FROM chunks INDEXED BY chunks_by_stream');
    collect('SELECT id FROM chunks ORDER BY id DESC');
    let upper = 0;
    try {
      upper = Number(db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").pluck().get() ?? 0);
    } catch {
      upper = 0;
    }
    const highest = Math.max(upper, ...ids);
    const lowest = ids.size > 0 ? Math.min(...ids) : 1;
    // Between the lowest and highest id seen, probe every id: rows the scans could not reach may still be readable.
    if (highest - lowest < 10_000_000) for (let id = lowest; id <= highest; id++) ids.add(id);
    const one = db.prepare('SELECT id, stream_id, count, created, codec, payload FROM chunks WHERE id = ?');
    type Row = { id: number; stream_id: number; count: number; created: number; codec: number; payload: Buffer };
    for (const id of [...ids].sort((a, b) => a - b)) {
      let row: Row | undefined;
      try {
        row = one.get(id) as Row | undefined;
      } catch {
        result.lostChunks++; // unreadable row: its record count is gone with it
        continue;
      }
      if (!row) continue; // deleted long ago (acknowledged): not a loss
      const compression = compressionFromId(row.codec);
      try {
        if (!compression) throw new Error('unknown codec');
        const records = decodeRecords(decompress(row.payload, compression, 256 * 1024 * 1024), { text: 'replace' });
        result.chunks.push({
          stream: names.get(row.stream_id) ?? `salvaged-${row.stream_id}`,
          count: records.length,
          created: row.created,
          codec: row.codec,
          payload: row.payload,
        });
      } catch {
        result.lostChunks++;
        result.lostRecords += Number.isInteger(row.count) && row.count > 0 ? row.count : 0;
      }
    }
  } finally {
    db.close();
  }
  return result;
}

export { openDatabase };
