/**
 * The batch planner: which chunks make the next batches of a stream (the gaps between recorded ranges,
 * oldest first or live first, cut at batch.max_records and batch.max_bytes), writing them down, and reading
 * a batch's body. Separate because the drain order is the queue's most intricate logic and depends only on
 * the ledger's view, not on when commits happen.
 */
import { crc32 } from 'node:zlib';
import type Database from 'better-sqlite3';
import { AgentError } from '../errors.ts';
import type { AgentRecord } from '../domain/record.ts';
import { compress, compressionFromId, decodeRecords, decompress, encodeRecords } from '../envelope/codec.ts';
import type { Ledger, StreamState } from './ledger.ts';
import type { BatchRow, ChunkRow, Statements } from './storage.ts';
import type { LeasedBatch, QueueOptions } from './types.ts';

export class BatchPlanner {
  private readonly db: Database.Database;
  private readonly stmt: Statements;
  private readonly opts: QueueOptions;
  private readonly ledger: Ledger;
  private readonly now: () => number;
  private readonly reserveSeqs: (stream: string, last: number) => void;

  /** `reserveSeqs` makes sequences up to `last` durable as used before they are handed out (sequences.ts). */
  constructor(db: Database.Database, stmt: Statements, opts: QueueOptions, ledger: Ledger, reserveSeqs: (stream: string, last: number) => void = () => {}) {
    this.db = db;
    this.reserveSeqs = reserveSeqs;
    this.stmt = stmt;
    this.opts = opts;
    this.ledger = ledger;
    this.now = opts.now ?? Date.now;
  }

  /** The streams, higher priority first (then the order they were first seen). */
  byPriority(): StreamState[] {
    return [...this.ledger.streams.values()].sort((a, b) => b.priority - a.priority || a.id - b.id);
  }

  /**
   * Records up to `max` batches, highest-priority streams first (inside the commit's transaction); `capOf`
   * bounds a stream's new batches in stored bytes (see `record`).
   */
  recordDemanded(max: number, capOf?: (stream: string) => number): number {
    let made = 0;
    for (const stream of this.byPriority()) {
      while (made < max && stream.records > stream.batchedRecords) {
        const before = stream.batches.size;
        if (!this.record(stream, max - made, capOf?.(stream.name))) break;
        made += stream.batches.size - before;
      }
    }
    return made;
  }

  /**
   * Writes down up to `max` next batches of a stream (sequence → chunk range, time) in one transaction, so
   * a sender with room for several batches pays one fsync for all of them. Returns the first.
   * `capBytes`: stored (compressed) bytes the new batches may hold together, what the governor can admit now
   * (docs/governor.md, "Batch size"); at least one chunk is always taken, so a batch is never empty.
   */
  record(stream: StreamState, max: number, capBytes = Number.POSITIVE_INFINITY): BatchRow | undefined {
    const groups = this.plan(stream, max, capBytes);
    if (groups.length === 0) return undefined;
    const now = this.now();
    const made: BatchRow[] = groups.map((g, i) => ({
      seq: stream.nextSeq + i,
      firstChunk: g[0]!.id,
      lastChunk: g[g.length - 1]!.id,
      count: g.reduce((n, r) => n + r.count, 0),
      created: now,
    }));
    const nextSeq = stream.nextSeq + made.length;
    this.reserveSeqs(stream.name, nextSeq - 1);
    this.db.transaction(() => {
      for (const b of made) this.stmt.insertBatch.run(stream.id, b.seq, b.firstChunk, b.lastChunk, b.count, b.created);
      this.stmt.updateStream.run(nextSeq, stream.id);
    })();
    stream.nextSeq = nextSeq;
    for (const b of made) {
      stream.batches.set(b.seq, b);
      stream.batchedRecords += b.count;
    }
    return made[0];
  }

  /**
   * The chunks of up to `max` next batches. Chunks not yet in a batch are the gaps between the recorded
   * ranges. Oldest first fills the first gaps; live first takes the newest chunks (after the last range)
   * first, newest batch first, and fills the older gaps only when nothing newer waits.
   */
  private plan(stream: StreamState, max: number, capBytes: number): ChunkRow[][] {
    // Every chunk holds at least one record, so max × batchMaxRecords rows always cover `max` batches.
    const limit = max * this.opts.batchMaxRecords;
    const ranges = [...stream.batches.values()].map((b) => [b.firstChunk, b.lastChunk] as const).sort((a, b) => a[0] - b[0]);
    const groups: ChunkRow[][] = [];
    if (stream.drain === 'live_first') {
      const after = ranges.reduce((m, r) => Math.max(m, r[1]), 0);
      const newestFirst = this.stmt.newestAfter.all(stream.id, after, limit) as ChunkRow[];
      // Cut from the newest end, so the most recent records form the first batch; each batch's chunks are
      // then put back in ascending order (a batch is a chunk range).
      for (const group of this.group(newestFirst, capBytes).slice(0, max)) groups.push([...group].reverse());
      // The gap scan below must not take these rows (or the rest of the tail) again in this call.
      if (newestFirst.length > 0) ranges.push([newestFirst[newestFirst.length - 1]!.id, Number.MAX_SAFE_INTEGER]);
    }
    let gapStart = 0;
    for (const [first, last] of [...ranges, [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] as const]) {
      if (groups.length >= max) break;
      if (first > gapStart + 1) {
        const rows = this.stmt.chunksBetween.all(stream.id, gapStart, first, limit) as ChunkRow[];
        groups.push(...this.group(rows, capBytes).slice(0, max - groups.length));
      }
      gapStart = Math.max(gapStart, last);
    }
    return withinCap(groups, capBytes);
  }

  /**
   * Cuts consecutive chunk rows into batches of at most batch.max_records records and batch.max_bytes of CBOR
   * (the bound the centre's max_batch_bytes checks: stored sizes are compressed, so a merge of small chunks
   * counted by them ran several times over it). A chunk whose CBOR size is not known is never merged. Only
   * small chunks are merged: a batch of several chunks is decoded and encoded again (materialise), which cost
   * about a third of the CPU of 500 B records end to end when the byte limit had halved every commit's chunk
   * and the halves were merged again. A chunk of at least `mergeBelowBytes` stored bytes is a batch of its own.
   */
  private group(rows: ChunkRow[], capBytes: number): ChunkRow[][] {
    const { batchMaxRecords, batchMaxBytes } = this.opts;
    const alone = mergeBelowBytes(batchMaxBytes);
    const out: ChunkRow[][] = [];
    let current: ChunkRow[] = [];
    let count = 0;
    let bytes = 0;
    let stored = 0;
    for (const row of rows) {
      const cbor = row.cbor ?? batchMaxBytes;
      const big = row.size >= alone || (current.length === 1 && current[0]!.size >= alone);
      if (current.length > 0 && (big || count + row.count > batchMaxRecords || bytes + cbor > batchMaxBytes || stored + row.size > capBytes)) {
        out.push(current);
        current = [];
        count = 0;
        bytes = 0;
        stored = 0;
      }
      current.push(row);
      count += row.count;
      bytes += cbor;
      stored += row.size;
    }
    if (current.length > 0) out.push(current);
    return out;
  }

  /**
   * Reads a batch's body. A single chunk in the current codec is used as stored: no re-encoding. A chunk whose
   * payload is not what was written (its CRC-32 differs, or it does not decode) throws QUEUE_CORRUPT, which
   * the queue answers by setting the batch aside (queue.ts, `pickBatch`).
   */
  materialise(stream: StreamState, batch: BatchRow): LeasedBatch {
    const rows = this.stmt.payloads.all(stream.id, batch.firstChunk, batch.lastChunk) as PayloadRow[];
    for (const row of rows) {
      if (row.crc32 !== null && crc32(row.payload) !== row.crc32) throw corrupt(stream, batch, row, 'its checksum differs from the one written with it');
    }
    const current = this.opts.codec;
    let body: Uint8Array;
    const only = rows[0];
    if (rows.length === 1 && only && compressionFromId(only.codec) === current.compression) {
      body = only.payload;
    } else {
      const records: AgentRecord[] = [];
      for (const row of rows) {
        const compression = compressionFromId(row.codec);
        if (!compression) throw new AgentError('QUEUE_OPEN_FAILED', `chunk of ${stream.name} has unknown codec ${row.codec}`);
        let decoded: AgentRecord[];
        try {
          // Bounded by what was written when that is known (an older build's chunk: by nothing but its count).
          decoded = decodeRecords(decompress(row.payload, compression, row.cbor ?? Number.MAX_SAFE_INTEGER), { text: 'replace' });
        } catch (cause) {
          throw corrupt(stream, batch, row, 'it does not decode', cause);
        }
        for (const r of decoded) records.push(r);
      }
      body = compress(encodeRecords(records), current);
    }
    return {
      stream: stream.name,
      seq: batch.seq,
      count: batch.count,
      created: batch.created,
      oldest: rows[0]?.created ?? batch.created,
      compression: current.compression,
      body,
      key: `${stream.name}:${batch.seq}`,
    };
  }
}

/**
 * The first batches whose stored bytes together stay within `capBytes`; the first batch always (it is one
 * chunk when the cap is below a chunk's size). Chunks left out stay in the gaps for a later call.
 */
function withinCap(groups: ChunkRow[][], capBytes: number): ChunkRow[][] {
  if (capBytes === Number.POSITIVE_INFINITY) return groups;
  let total = 0;
  const kept: ChunkRow[][] = [];
  for (const g of groups) {
    total += g.reduce((n, r) => n + r.size, 0);
    if (kept.length > 0 && total > capBytes) break;
    kept.push(g);
  }
  return kept;
}

/**
 * Stored (compressed) size from which a chunk is not merged with its neighbours: 1/64 of batch.max_bytes (4 KiB
 * at the default 256 KiB). Below it the envelope's fixed bytes and a colder compressor make small batches
 * dear on the wire, so merging pays; above it re-encoding costs more CPU than it saves bytes.
 */
export function mergeBelowBytes(batchMaxBytes: number): number {
  return Math.max(1, Math.floor(batchMaxBytes / 64));
}

interface PayloadRow {
  id: number;
  codec: number;
  payload: Buffer;
  created: number;
  /** CBOR bytes before compression; null when not recorded. */
  cbor: number | null;
  /** CRC-32 of the payload as written; null when not recorded (an older build's chunk, a salvaged one). */
  crc32: number | null;
}

function corrupt(stream: StreamState, batch: BatchRow, row: PayloadRow, why: string, cause?: unknown): AgentError {
  return new AgentError('QUEUE_CORRUPT', `chunk ${row.id} of stream ${stream.name} (batch ${batch.seq}) is damaged: ${why}`, {
    cause,
    details: { stream: stream.name, seq: batch.seq, chunk: row.id },
  });
}
