/**
 * `edge-agent queue purge`: removes units (recorded batches whole, or chunks not yet in a batch) from a queue
 * file, in transactions of at most WRITE_SLICE chunks so a running agent's commits wait a few milliseconds at
 * most. Each unit is checked again inside the transaction that removes it: a chunk the agent put into a batch
 * since it was chosen is kept (the batch may be on its way to the centre), and a batch already acknowledged
 * is simply gone. What is removed is written to the purge log (tool-file.ts) for `queue replay`.
 */
import type { ToolFile } from './tool-file.ts';
import { ensurePurgeLog, syncWrites, WRITE_SLICE } from './tool-file.ts';
import type { QueueUnit } from './tool-units.ts';

export interface PurgeTally {
  units: number;
  records: number;
  bytes: number;
  /** Units left alone: numbered since they were chosen, or gone (delivered) meanwhile. */
  kept: number;
  /** The longest a write transaction held the lock (ms): the longest a running agent's commit waited for it. */
  longestWriteMs: number;
}

export type UnitId = Pick<QueueUnit, 'stream' | 'seq' | 'firstChunk' | 'lastChunk'>;

export class Purger {
  private readonly file: ToolFile;
  private readonly streamIds = new Map<string, number>();
  private readonly stmt;
  readonly tally: PurgeTally = { units: 0, records: 0, bytes: 0, kept: 0, longestWriteMs: 0 };
  private slice: UnitId[] = [];
  private sliceChunks = 0;

  constructor(file: ToolFile) {
    this.file = file;
    for (const [id, name] of file.streams) this.streamIds.set(name, id);
    ensurePurgeLog(file.db);
    const db = file.db;
    this.stmt = {
      batch: db.prepare('SELECT first_chunk AS first, last_chunk AS last FROM batches WHERE stream_id = ? AND seq = ?'),
      inBatch: db.prepare('SELECT 1 FROM batches WHERE stream_id = ? AND ? BETWEEN first_chunk AND last_chunk LIMIT 1'),
      size: db.prepare(
        'SELECT coalesce(sum(count), 0) AS records, coalesce(sum(length(payload)), 0) AS bytes, count(*) AS chunks FROM chunks WHERE stream_id = ? AND id BETWEEN ? AND ?',
      ),
      deleteChunks: db.prepare('DELETE FROM chunks WHERE stream_id = ? AND id BETWEEN ? AND ?'),
      deleteBatch: db.prepare('DELETE FROM batches WHERE stream_id = ? AND seq = ?'),
      log: db.prepare(
        'INSERT INTO tool_purged (stream, first_chunk, seq, at) VALUES (?, ?, ?, ?) ON CONFLICT(stream, first_chunk) DO UPDATE SET seq = excluded.seq, at = excluded.at',
      ),
    };
  }

  /** Queues a unit for removal; removed with the next full slice or `finish`. */
  add(unit: UnitId): void {
    this.slice.push(unit);
    this.sliceChunks += unit.lastChunk - unit.firstChunk + 1;
    if (this.sliceChunks >= WRITE_SLICE) this.flush();
  }

  finish(): PurgeTally {
    this.flush();
    syncWrites(this.file);
    return this.tally;
  }

  private flush(): void {
    const units = this.slice;
    this.slice = [];
    this.sliceChunks = 0;
    if (units.length === 0) return;
    const now = Date.now();
    // IMMEDIATE: the write lock first, so the checks below see what the removal acts on.
    const started = performance.now();
    this.file.db
      .transaction(() => {
        for (const unit of units) this.removeOne(unit, now);
      })
      .immediate();
    this.tally.longestWriteMs = Math.max(this.tally.longestWriteMs, performance.now() - started);
  }

  private removeOne(unit: UnitId, now: number): void {
    const streamId = this.streamIds.get(unit.stream);
    if (streamId === undefined) {
      this.tally.kept++;
      return;
    }
    if (unit.seq !== null) {
      const batch = this.stmt.batch.get(streamId, unit.seq) as { first: number; last: number } | undefined;
      if (!batch || batch.first !== unit.firstChunk || batch.last !== unit.lastChunk) {
        this.tally.kept++; // acknowledged since (gone), or not the batch that was exported
        return;
      }
    } else if (this.stmt.inBatch.get(streamId, unit.firstChunk)) {
      this.tally.kept++; // numbered since it was chosen: the agent may be sending it now
      return;
    }
    const size = this.stmt.size.get(streamId, unit.firstChunk, unit.lastChunk) as { records: number; bytes: number; chunks: number };
    if (size.chunks === 0) {
      this.tally.kept++;
      return;
    }
    this.stmt.deleteChunks.run(streamId, unit.firstChunk, unit.lastChunk);
    if (unit.seq !== null) this.stmt.deleteBatch.run(streamId, unit.seq);
    this.stmt.log.run(unit.stream, unit.firstChunk, unit.seq, now);
    this.tally.units++;
    this.tally.records += size.records;
    this.tally.bytes += size.bytes;
  }
}
