/**
 * `edge-agent queue salvage`: reads what can be read from a damaged queue file (a `*.corrupt-*` file that
 * recovery set aside, a file `check` found damaged, a copy from a dead gateway's card) without writing to it,
 * one row at a time, so a bad page costs the rows on it and memory stays bounded. Each chunk is decoded to
 * prove it whole (and its record count must match its row); a recorded batch keeps its sequence only when
 * every one of its chunks survived, otherwise its survivors come out as records not yet numbered.
 *
 * The counts are exact where the file allows: a chunk whose row survived but whose payload did not has its
 * records counted as lost; a row that cannot be read at all is counted as a lost chunk of unknown size.
 */
import { rmSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type Database from 'better-sqlite3';
import type { AgentRecord } from '../domain/record.ts';
import { openDatabase } from '../util/sqlite.ts';
import { paddedCopy } from './recovery.ts';
import { hasChunkChecksums } from './tool-file.ts';
import { decodeChunk, type QueueUnit } from './tool-units.ts';

export interface SalvageTally {
  /** Row ids probed (between the lowest and highest id any structure still names). */
  probed: number;
  chunks: number;
  records: number;
  /** Chunks whose row was read but whose records were not (payload damaged): their records are counted. */
  damagedChunks: number;
  damagedRecords: number;
  /** Rows that could not be read at all: how many records they held is unknown. */
  unreadableChunks: number;
  /** Recorded batches that lost a chunk: their surviving records come out without their sequence. */
  brokenBatches: number;
  epoch: string;
  /** What could not be read besides chunks (stream names, batches). */
  notes: string[];
}

/** Ids above this span are not probed one by one (a file that claims billions of rows is garbage). */
const MAX_PROBE_SPAN = 50_000_000;

export interface SalvageReader {
  tally: SalvageTally;
  units: Generator<QueueUnit>;
  close(): void;
}

export function openSalvage(path: string): SalvageReader {
  const padded = paddedCopy(path);
  const tally: SalvageTally = {
    probed: 0,
    chunks: 0,
    records: 0,
    damagedChunks: 0,
    damagedRecords: 0,
    unreadableChunks: 0,
    brokenBatches: 0,
    epoch: '',
    notes: padded ? ['the file is shorter than its header says (cut short): read from a copy padded with zeros'] : [],
  };
  let db: Database.Database | undefined;
  try {
    db = openDatabase(padded ?? path, { readonly: true, fileMustExist: true });
    db.pragma('cache_size = -512');
  } catch (err) {
    tally.notes.push(`not readable as SQLite at all: ${(err as Error).message}`);
  }
  const close = () => {
    db?.close();
    if (padded) for (const f of [padded, `${padded}-wal`, `${padded}-shm`]) rmSync(f, { force: true });
  };
  return { tally, units: db ? walk(db, tally) : empty(), close };
}

function* empty(): Generator<QueueUnit> {}

function attempt<T>(tally: SalvageTally, what: string, read: () => T, fallback: T): T {
  try {
    return read();
  } catch (err) {
    tally.notes.push(`${what}: ${(err as Error).message}`);
    return fallback;
  }
}

function* walk(db: Database.Database, tally: SalvageTally): Generator<QueueUnit> {
  const epoch = attempt(
    tally,
    'epoch unreadable',
    () => db.prepare("SELECT value FROM meta WHERE key = 'epoch'").pluck().get() as Buffer | undefined,
    undefined,
  );
  tally.epoch = epoch ? Buffer.from(epoch).toString('hex') : '';
  const names = new Map<number, string>();
  attempt(
    tally,
    'stream names unreadable (chunks named salvaged-<id>)',
    () => {
      for (const r of db.prepare('SELECT id, name FROM streams').iterate() as IterableIterator<{ id: number; name: string }>) names.set(r.id, r.name);
    },
    undefined,
  );
  // Recorded batches, by stream: few (the sender's window), so held in memory.
  const batches: { stream: number; seq: number; first: number; last: number; count: number }[] = [];
  attempt(
    tally,
    'recorded batches unreadable (their records come out not numbered)',
    () => {
      for (const b of db.prepare('SELECT stream_id AS stream, seq, first_chunk AS first, last_chunk AS last, count FROM batches').iterate() as IterableIterator<
        (typeof batches)[0]
      >)
        batches.push(b);
    },
    undefined,
  );
  const bound = (sql: string) => attempt(tally, 'an id bound unreadable', () => Number(db.prepare(sql).pluck().get() ?? Number.NaN), Number.NaN);
  const lows = [bound('SELECT id FROM chunks ORDER BY id LIMIT 1'), bound('SELECT id FROM chunks INDEXED BY chunks_by_stream ORDER BY stream_id, id LIMIT 1')];
  const highs = [
    bound('SELECT id FROM chunks ORDER BY id DESC LIMIT 1'),
    bound("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'"),
    bound('SELECT max(id) FROM chunks INDEXED BY chunks_by_stream'),
  ];
  const known = (xs: number[]) => xs.filter((x) => Number.isSafeInteger(x) && x > 0);
  const highest = Math.max(0, ...known(highs));
  let lowest = known(lows).length > 0 ? Math.min(...known(lows)) : 1;
  if (highest - lowest > MAX_PROBE_SPAN) {
    tally.notes.push(`ids span ${lowest}…${highest}: only the last ${MAX_PROBE_SPAN} are probed`);
    lowest = highest - MAX_PROBE_SPAN;
  }
  const row = db.prepare(`SELECT stream_id, count, created, codec, payload${hasChunkChecksums(db) ? ', crc32' : ''} FROM chunks WHERE id = ?`);
  const countOnly = db.prepare('SELECT stream_id, count FROM chunks WHERE id = ?');
  type Row = { stream_id: number; count: number; created: number; codec: number; payload: Buffer; crc32?: number | null };
  // Batches being gathered, by stream (streams' chunks interleave in id order): their chunks so far.
  type Open = { batch: (typeof batches)[0]; units: QueueUnit[] };
  const opens = new Map<number, Open>();
  const name = (id: number) => names.get(id) ?? `salvaged-${id}`;
  // A batch comes out whole, with its sequence, only if its records are all there (its row's count).
  const closeBatch = function* (open: Open): Generator<QueueUnit> {
    opens.delete(open.batch.stream);
    const { batch, units } = open;
    const records = units.reduce((n, u) => n + u.count, 0);
    if (units.length > 0 && records === batch.count) {
      const all: AgentRecord[] = [];
      for (const u of units) for (const r of u.records) all.push(r);
      yield {
        ...units[0]!,
        seq: batch.seq,
        lastChunk: units[units.length - 1]!.lastChunk,
        count: records,
        records: all,
        storedBytes: units.reduce((n, u) => n + u.storedBytes, 0),
      };
      return;
    }
    tally.brokenBatches++;
    yield* units;
  };
  const lost = (count: number | undefined) => {
    if (count !== undefined && Number.isSafeInteger(count) && count > 0) {
      tally.damagedChunks++;
      tally.damagedRecords += count;
    } else {
      tally.unreadableChunks++;
    }
  };
  for (let id = lowest; id <= highest; id++) {
    tally.probed++;
    for (const open of [...opens.values()]) if (id > open.batch.last) yield* closeBatch(open);
    let r: Row | undefined;
    try {
      r = row.get(id) as Row | undefined;
    } catch {
      let counted: { stream_id: number; count: number } | undefined;
      try {
        counted = countOnly.get(id) as typeof counted;
      } catch {
        counted = undefined;
      }
      lost(counted?.count);
      continue;
    }
    if (!r) continue; // deleted long ago (acknowledged): not a loss
    let records: AgentRecord[];
    try {
      // A payload that is not what was written may still decode, into other records: its checksum says so.
      if (r.crc32 != null && crc32(r.payload) !== r.crc32) throw new Error('its checksum differs');
      records = decodeChunk(r.codec, r.payload);
      if (records.length !== r.count) throw new Error(`holds ${records.length} records, its row says ${r.count}`);
    } catch {
      lost(r.count);
      continue;
    }
    tally.chunks++;
    tally.records += records.length;
    const unit: QueueUnit = {
      stream: name(r.stream_id),
      seq: null,
      firstChunk: id,
      lastChunk: id,
      created: r.created,
      storedBytes: r.payload.length,
      count: records.length,
      records,
    };
    let open = opens.get(r.stream_id);
    if (!open) {
      const stream = r.stream_id;
      const batch = batches.find((b) => b.stream === stream && b.first <= id && id <= b.last);
      if (batch) opens.set(stream, (open = { batch, units: [] }));
    }
    if (open) open.units.push(unit);
    else yield unit;
  }
  for (const open of [...opens.values()]) yield* closeBatch(open);
}
