/**
 * `edge-agent queue inspect`: what a queue file holds, per stream, from a few aggregate reads (each a short
 * read beside a running agent), plus the quarantined files recovery left beside it.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ToolFile } from './tool-file.ts';

export interface StreamSummary {
  stream: string;
  records: number;
  chunks: number;
  /** Compressed bytes stored. */
  bytes: number;
  /** Recorded batches (numbered, not yet acknowledged) and their sequence range. */
  batches: number;
  batchedRecords: number;
  firstSeq: number | null;
  lastSeq: number | null;
  nextSeq: number;
  /** Commit time of the oldest and newest chunk (ms), null when empty. */
  oldest: number | null;
  newest: number | null;
}

export interface QueueSummary {
  path: string;
  epoch: string;
  fileBytes: number;
  walBytes: number;
  streams: StreamSummary[];
  records: number;
  bytes: number;
  drops: { stream: string; reason: string; records: number }[];
  /** Units `queue purge` removed and `queue replay` has not put back. */
  purgeLog: number;
  quarantined: { path: string; bytes: number }[];
}

export function inspect(file: ToolFile): QueueSummary {
  const db = file.db;
  const sizes = new Map(
    (
      db
        .prepare(
          'SELECT stream_id, sum(count) AS records, count(*) AS chunks, sum(length(payload)) AS bytes, min(created) AS oldest, max(created) AS newest FROM chunks GROUP BY stream_id',
        )
        .all() as {
        stream_id: number;
        records: number;
        chunks: number;
        bytes: number;
        oldest: number;
        newest: number;
      }[]
    ).map((r) => [r.stream_id, r]),
  );
  const batches = new Map(
    (
      db.prepare('SELECT stream_id, count(*) AS n, sum(count) AS records, min(seq) AS first, max(seq) AS last FROM batches GROUP BY stream_id').all() as {
        stream_id: number;
        n: number;
        records: number;
        first: number;
        last: number;
      }[]
    ).map((r) => [r.stream_id, r]),
  );
  const streams: StreamSummary[] = [];
  for (const row of db.prepare('SELECT id, name, next_seq FROM streams ORDER BY name').all() as { id: number; name: string; next_seq: number }[]) {
    const s = sizes.get(row.id);
    const b = batches.get(row.id);
    streams.push({
      stream: row.name,
      records: s?.records ?? 0,
      chunks: s?.chunks ?? 0,
      bytes: s?.bytes ?? 0,
      batches: b?.n ?? 0,
      batchedRecords: b?.records ?? 0,
      firstSeq: b?.first ?? null,
      lastSeq: b?.last ?? null,
      nextSeq: row.next_seq,
      oldest: s?.oldest ?? null,
      newest: s?.newest ?? null,
    });
  }
  const hasTable = (name: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  const drops = hasTable('drops') ? (db.prepare('SELECT stream, reason, records FROM drops ORDER BY stream, reason').all() as QueueSummary['drops']) : [];
  const purgeLog = hasTable('tool_purged') ? (db.prepare('SELECT count(*) FROM tool_purged').pluck().get() as number) : 0;
  const size = (p: string) => (existsSync(p) ? statSync(p).size : 0);
  return {
    path: file.path,
    epoch: file.epoch,
    fileBytes: size(file.path),
    walBytes: size(`${file.path}-wal`),
    streams,
    records: streams.reduce((n, s) => n + s.records, 0),
    bytes: streams.reduce((n, s) => n + s.bytes, 0),
    drops,
    purgeLog,
    quarantined: quarantinedBeside(file.path),
  };
}

/** The `<queue>.corrupt-<time>` files recovery set aside next to the queue (their -wal and -shm aside). */
export function quarantinedBeside(path: string): { path: string; bytes: number }[] {
  const dir = dirname(path);
  const prefix = `${basename(path)}.corrupt-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(prefix) && !n.endsWith('-wal') && !n.endsWith('-shm'))
    .sort()
    .map((n) => ({ path: join(dir, n), bytes: statSync(join(dir, n)).size }));
}
