/**
 * `edge-agent queue replay`: puts exported units back into a queue file so the agent sends them, keeping
 * their identity (docs/operations.md, "Queue tools"):
 *
 * - into the queue they came from (same epoch): only units `queue purge` removed (the purge log) go back, and
 *   a recorded batch goes back as the same batch: same stream, same sequence, same records in the same order.
 *   The agent sends it under (device, stream, epoch, seq) as before, so a centre that took it before drops
 *   the copy and acknowledges it again. A unit not in the log is skipped: it is still queued, or the centre
 *   has it. Each unit put back leaves the log, so replaying the same export twice adds nothing.
 * - into another queue (a replaced card, a dead gateway's salvaged file): records that were never in a batch
 *   were never sent, so they go in as new records. A recorded batch cannot keep its identity in another
 *   epoch: it is refused unless `renumber` (then the centre may hold its records twice).
 */
import { crc32 } from 'node:zlib';
import type { AgentRecord } from '../domain/record.ts';
import { COMPRESSION_ID, type CodecSettings, compress, encodeRecords } from '../envelope/codec.ts';
import { AgentError } from '../errors.ts';
import type { ToolFile } from './tool-file.ts';
import { ensurePurgeLog, hasChunkChecksums, syncWrites, WRITE_SLICE } from './tool-file.ts';
import type { QueueUnit } from './tool-units.ts';

export interface ReplayTally {
  /** Units put back as they were (recorded batches with their sequence, or not-yet-numbered records). */
  units: number;
  records: number;
  /** Units skipped: not purged from this queue (still in it, or delivered). */
  skipped: number;
  skippedRecords: number;
  /** Recorded batches of another epoch put in as new records (`renumber`). */
  renumbered: number;
  /** The longest a write transaction held the lock (ms): the longest a running agent's commit waited for it. */
  longestWriteMs: number;
}

export interface ReplayOptions {
  /** The epoch the export was made under. */
  epoch: string;
  codec: CodecSettings;
  renumber: boolean;
  dryRun: boolean;
}

export class Replayer {
  private readonly file: ToolFile;
  private readonly opts: ReplayOptions;
  private readonly sameEpoch: boolean;
  /** Whether the file's chunks table has the crc32 column. */
  private readonly checksums: boolean;
  private readonly stmt;
  readonly tally: ReplayTally = { units: 0, records: 0, skipped: 0, skippedRecords: 0, renumbered: 0, longestWriteMs: 0 };
  private slice: QueueUnit[] = [];

  constructor(file: ToolFile, opts: ReplayOptions) {
    this.file = file;
    this.opts = opts;
    this.sameEpoch = file.epoch !== '' && file.epoch === opts.epoch;
    const db = file.db;
    this.checksums = hasChunkChecksums(db);
    if (!opts.dryRun) ensurePurgeLog(db);
    const hasLog = (db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'tool_purged'").get() as unknown) !== undefined;
    this.stmt = {
      logged: hasLog ? db.prepare('SELECT seq FROM tool_purged WHERE stream = ? AND first_chunk = ?') : undefined,
      unlog: hasLog ? db.prepare('DELETE FROM tool_purged WHERE stream = ? AND first_chunk = ?') : undefined,
      stream: db.prepare('INSERT INTO streams (name) VALUES (?) ON CONFLICT(name) DO UPDATE SET name = excluded.name RETURNING id'),
      // With its checksum when the file has the column (a queue an older build made and this one never opened
      // has not): the agent checks it when it reads the batch.
      chunk: this.checksums
        ? db.prepare('INSERT INTO chunks (stream_id, count, created, codec, payload, cbor_bytes, crc32) VALUES (?, ?, ?, ?, ?, ?, ?)')
        : db.prepare('INSERT INTO chunks (stream_id, count, created, codec, payload, cbor_bytes) VALUES (?, ?, ?, ?, ?, ?)'),
      batch: db.prepare('INSERT INTO batches (stream_id, seq, first_chunk, last_chunk, count, created) VALUES (?, ?, ?, ?, ?, ?)'),
      batchExists: db.prepare('SELECT 1 FROM batches WHERE stream_id = ? AND seq = ?'),
      // A sequence is never given twice: the stream's counter stays above every batch put back.
      bumpSeq: db.prepare('UPDATE streams SET next_seq = max(next_seq, ?) WHERE id = ?'),
    };
  }

  /** Decides and (unless dry-run) writes; units are written in slices. */
  add(unit: QueueUnit): void {
    if (unit.seq !== null && !this.sameEpoch && !this.opts.renumber) {
      throw new AgentError(
        'QUEUE_REPLAY_REFUSED',
        `batch ${unit.stream} #${unit.seq} was numbered under epoch ${this.opts.epoch}, not this queue's (${this.file.epoch || 'none'}): it cannot keep its identity here. Replay into the queue it came from, or pass --renumber (the centre may then hold its records twice)`,
      );
    }
    if (this.sameEpoch && !this.logged(unit)) {
      this.tally.skipped++;
      this.tally.skippedRecords += unit.records.length;
      return;
    }
    this.slice.push(unit);
    if (this.slice.length >= WRITE_SLICE) this.flush();
  }

  finish(): ReplayTally {
    this.flush();
    if (!this.opts.dryRun) syncWrites(this.file);
    return this.tally;
  }

  private logged(unit: QueueUnit): boolean {
    return this.stmt.logged?.get(unit.stream, unit.firstChunk) !== undefined;
  }

  private flush(): void {
    const units = this.slice;
    this.slice = [];
    if (units.length === 0) return;
    if (this.opts.dryRun) {
      for (const unit of units) this.count(unit);
      return;
    }
    // Encoded and compressed before the write lock is taken: the agent waits only for the inserts.
    const encoded = units.map((unit) => {
      const cbor = encodeRecords(unit.records as AgentRecord[]);
      return { unit, cborBytes: cbor.length, payload: compress(cbor, this.opts.codec) };
    });
    const started = performance.now();
    this.file.db
      .transaction(() => {
        for (const e of encoded) this.putBack(e.unit, e.payload, e.cborBytes);
      })
      .immediate();
    this.tally.longestWriteMs = Math.max(this.tally.longestWriteMs, performance.now() - started);
  }

  private count(unit: QueueUnit): void {
    this.tally.units++;
    this.tally.records += unit.records.length;
    if (unit.seq !== null && !this.sameEpoch) this.tally.renumbered++;
  }

  private putBack(unit: QueueUnit, payload: Uint8Array, cborBytes: number): void {
    // Checked again under the write lock: a second replay running beside this one must not add it twice.
    if (this.sameEpoch && !this.logged(unit)) {
      this.tally.skipped++;
      this.tally.skippedRecords += unit.records.length;
      return;
    }
    const streamId = (this.stmt.stream.get(unit.stream) as { id: number }).id;
    const keepSeq = unit.seq !== null && this.sameEpoch;
    if (keepSeq && this.stmt.batchExists.get(streamId, unit.seq)) {
      throw new AgentError('QUEUE_REPLAY_REFUSED', `batch ${unit.stream} #${unit.seq} is in the queue already; nothing was replayed from this slice`);
    }
    // Counted from now: a record put back must not expire at once for the time it spent outside the queue.
    const now = Date.now();
    const columns = [streamId, unit.records.length, now, COMPRESSION_ID[this.opts.codec.compression], payload, cborBytes];
    const row = this.stmt.chunk.run(...(this.checksums ? [...columns, crc32(payload)] : columns));
    const chunkId = Number(row.lastInsertRowid);
    if (keepSeq && unit.seq !== null) {
      this.stmt.batch.run(streamId, unit.seq, chunkId, chunkId, unit.records.length, now);
      this.stmt.bumpSeq.run(unit.seq + 1, streamId);
    }
    if (this.sameEpoch) this.stmt.unlog?.run(unit.stream, unit.firstChunk);
    this.count(unit);
  }
}
