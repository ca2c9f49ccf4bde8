/**
 * The ledger: the in-memory mirror of what the file holds (streams with their records, bytes and recorded
 * batches, the queue-wide totals, the sources' cursors, the drop counters) and the code that changes rows
 * and totals together. It is separate so the accounting the bounds and the planner rely on has one owner,
 * and so every drop is counted through one method (`countDrop`).
 */
import { crc32 } from 'node:zlib';
import type Database from 'better-sqlite3';
import type { Cursor } from '../domain/record.ts';
import type { Salvage } from './recovery.ts';
import { type BatchRow, CHUNK_OVERHEAD, readStoredView, type Statements } from './storage.ts';
import type { DrainOrder, DropReason, QueueOptions, QueueStats } from './types.ts';

const DEFAULT_PRIORITY = 50;

export interface StreamState {
  id: number;
  name: string;
  priority: number;
  nextSeq: number;
  records: number;
  bytes: number;
  /** Recorded, not yet acknowledged batches, by sequence (insertion order is sequence order). */
  batches: Map<number, BatchRow>;
  /** Records in `batches`: the stream's records minus these are waiting to be batched. */
  batchedRecords: number;
  maxBytes: number;
  maxAgeMs: number;
  drain: DrainOrder;
}

export class Ledger {
  readonly streams = new Map<string, StreamState>();
  private readonly streamsById = new Map<number, StreamState>();
  private readonly cursors = new Map<string, Cursor>();
  private readonly drops = new Map<string, Map<DropReason, number>>();
  /** Streams whose counters changed since they were last written: written with the next transaction. */
  private readonly dirtyDrops = new Set<string>();
  /** Drops counted since the last commit: logged once that commit holds them, forgotten if it rolls back. */
  private uncommittedDrops: { stream: string; reason: DropReason; records: number }[] = [];
  /** Told of every drop once its transaction committed (the governor counts expiry while it holds a class). */
  readonly dropListeners = new Set<(drop: { stream: string; reason: DropReason; records: number }) => void>();
  /** Batches handed to the sender and not yet settled (acked, refused, or given up): key → stream, seq. */
  readonly leased = new Map<string, { stream: string; seq: number }>();
  /**
   * In-flight batches that drop_oldest or max_age removed: counted as dropped only if the sender does not
   * deliver them after all. Key → what to count. `deferredNow` holds those of the transaction under way.
   */
  readonly deferredDrops = new Map<string, { stream: string; reason: DropReason; records: number }>();
  private deferredNow = new Map<string, { stream: string; reason: DropReason; records: number }>();
  totalBytes = 0;
  totalRecords = 0;
  private readonly db: Database.Database;
  private readonly stmt: Statements;
  private readonly opts: QueueOptions;

  private readonly seqFloor: (stream: string) => number;

  /** `seqFloor`: the lowest sequence a stream may continue from (see sequences.ts). */
  constructor(db: Database.Database, stmt: Statements, opts: QueueOptions, seqFloor: (stream: string) => number = () => 1) {
    this.db = db;
    this.stmt = stmt;
    this.opts = opts;
    this.seqFloor = seqFloor;
    this.load();
  }

  /** Rebuilds the in-memory view (totals, batches, cursors) from the database, which is the truth. */
  load(): void {
    const view = readStoredView(this.db);
    this.streams.clear();
    this.streamsById.clear();
    this.totalBytes = 0;
    this.totalRecords = 0;
    for (const row of view.streams) this.addStreamState(row.id, row.name, Math.max(row.next_seq, this.seqFloor(row.name)));
    for (const s of view.sizes) {
      const state = this.streamsById.get(s.stream_id);
      if (!state) continue;
      state.records = s.records;
      state.bytes = s.bytes + s.chunks * CHUNK_OVERHEAD;
      this.totalBytes += state.bytes;
      this.totalRecords += state.records;
    }
    for (const b of view.batches) {
      const stream = this.streamsById.get(b.stream_id);
      if (!stream) continue;
      stream.batches.set(b.seq, { seq: b.seq, firstChunk: b.first_chunk, lastChunk: b.last_chunk, count: b.count, created: b.created });
      stream.batchedRecords += b.count;
    }
    this.cursors.clear();
    for (const c of view.cursors) this.cursors.set(c.source, JSON.parse(c.value) as Cursor);
    this.drops.clear();
    for (const d of view.drops) this.dropsFor(d.stream).set(d.reason, d.records);
    // What the last (rolled back) transaction counted is not in the file: it never happened.
    this.dirtyDrops.clear();
    this.uncommittedDrops = [];
    this.deferredNow.clear();
  }

  /**
   * The transaction that wrote the drop counters committed: the drops it holds are now true and are logged,
   * and the in-flight batches it removed wait for the sender's verdict.
   */
  committed(): void {
    for (const d of this.uncommittedDrops) {
      this.opts.log.warn(d, 'records dropped');
      for (const listener of this.dropListeners) listener(d);
    }
    this.uncommittedDrops = [];
    for (const [key, drop] of this.deferredNow) this.deferredDrops.set(key, drop);
    this.deferredNow.clear();
  }

  /** A removed in-flight batch was not delivered after all: now it counts (written with the next commit). */
  settleDeferred(key: string, delivered: boolean): void {
    const drop = this.deferredDrops.get(key);
    if (!drop) return;
    this.deferredDrops.delete(key);
    if (!delivered) this.countDrop(drop.stream, drop.reason, drop.records);
  }

  /** When the stream's oldest chunk still held was committed (ms since the epoch), or undefined when it holds none. */
  oldestCommitted(stream: StreamState): number | undefined {
    if (stream.records === 0) return undefined;
    return (this.stmt.oldestCreated.get(stream.id) as { created: number } | undefined)?.created;
  }

  /** The stream's state, its row created first if the stream is new (inside a transaction). */
  stream(name: string): StreamState {
    const known = this.streams.get(name);
    if (known) return known;
    const row = this.stmt.insertStream.get(name) as { id: number; next_seq: number };
    return this.addStreamState(row.id, name, Math.max(row.next_seq, this.seqFloor(name)));
  }

  private addStreamState(id: number, name: string, nextSeq: number): StreamState {
    const own = this.opts.streams?.[name];
    const state: StreamState = {
      id,
      name,
      priority: this.opts.priorities[name] ?? DEFAULT_PRIORITY,
      nextSeq,
      records: 0,
      bytes: 0,
      batches: new Map(),
      batchedRecords: 0,
      maxBytes: own?.maxBytes ?? Number.POSITIVE_INFINITY,
      maxAgeMs: own?.maxAgeMs ?? this.opts.maxAgeMs,
      drain: own?.drain ?? 'oldest_first',
    };
    this.streams.set(name, state);
    this.streamsById.set(id, state);
    return state;
  }

  cursor(source: string): Cursor | undefined {
    return this.cursors.get(source);
  }

  /** Writes the sources' new cursors (inside the transaction that holds their records). */
  writeCursors(cursors: ReadonlyMap<string, Cursor>): void {
    for (const [source, value] of cursors) this.stmt.upsertCursor.run(source, JSON.stringify(value));
  }

  /** Takes the cursors just written as the current ones. */
  rememberCursors(cursors: ReadonlyMap<string, Cursor>): void {
    for (const [source, value] of cursors) this.cursors.set(source, value);
  }

  private dropsFor(stream: string): Map<DropReason, number> {
    let map = this.drops.get(stream);
    if (!map) this.drops.set(stream, (map = new Map()));
    return map;
  }

  /** Counts records dropped from `stream` for `reason`; the counters are written with the next transaction. */
  countDrop(stream: string, reason: DropReason, records: number): void {
    if (records <= 0) return;
    const map = this.dropsFor(stream);
    map.set(reason, (map.get(reason) ?? 0) + records);
    this.dirtyDrops.add(stream);
    this.uncommittedDrops.push({ stream, reason, records });
  }

  hasUnwrittenDrops(): boolean {
    return this.dirtyDrops.size > 0;
  }

  /** Writes the changed drop counters (inside a transaction). */
  persistDrops(): void {
    for (const stream of this.dirtyDrops) {
      for (const [reason, records] of this.dropsFor(stream)) this.stmt.upsertDrops.run(stream, reason, records);
    }
    this.dirtyDrops.clear();
  }

  dropStats(): QueueStats['drops'] {
    const drops: QueueStats['drops'] = {};
    for (const [stream, map] of this.drops) drops[stream] = Object.fromEntries(map);
    return drops;
  }

  /** Stores one encoded chunk (inside a transaction) and counts it in. */
  addChunk(stream: StreamState, count: number, created: number, codecId: number, payload: Uint8Array, cborBytes: number): void {
    const size = payload.length + CHUNK_OVERHEAD;
    this.stmt.insertChunk.run(stream.id, count, created, codecId, payload, cborBytes, crc32(payload));
    stream.records += count;
    stream.bytes += size;
    this.totalBytes += size;
    this.totalRecords += count;
  }

  /** Deletes a batch and its chunks (inside a transaction). Idempotent: a batch already gone is a no-op. */
  removeBatch(stream: StreamState, seq: number): number {
    const batch = stream.batches.get(seq);
    if (!batch) return 0;
    const size = this.stmt.rangeSizes.get(stream.id, batch.firstChunk, batch.lastChunk) as { records: number; bytes: number; chunks: number };
    this.stmt.deleteRange.run(stream.id, batch.firstChunk, batch.lastChunk);
    this.stmt.deleteBatch.run(stream.id, seq);
    stream.batches.delete(seq);
    stream.batchedRecords -= batch.count;
    const bytes = size.bytes + size.chunks * CHUNK_OVERHEAD;
    stream.records -= size.records;
    stream.bytes -= bytes;
    this.totalRecords -= size.records;
    this.totalBytes -= bytes;
    return size.records;
  }

  /** Removes the oldest chunk of `stream` (with the whole batch it belongs to, if any); returns records removed. */
  removeOldest(stream: StreamState, reason: DropReason, olderThan?: number): number {
    const oldest = this.stmt.oldestChunk.get(stream.id) as { id: number; count: number; created: number; size: number } | undefined;
    if (!oldest || (olderThan !== undefined && oldest.created >= olderThan)) return 0;
    let removed: number;
    // A chunk that is part of a recorded batch goes with its whole batch, so a re-send never differs.
    const batch = [...stream.batches.values()].find((b) => b.firstChunk <= oldest.id && oldest.id <= b.lastChunk);
    if (batch) {
      removed = this.removeBatch(stream, batch.seq);
      const key = `${stream.name}:${batch.seq}`;
      if (reason !== 'expired' && this.leased.has(key)) {
        // On its way to the sink: if the sink takes it, these records were delivered, not dropped. (Expiry
        // counts at once: records past max_age are dropped by definition, and the sink's answer is late.)
        this.deferredNow.set(key, { stream: stream.name, reason, records: removed });
        return removed;
      }
    } else {
      this.stmt.deleteRange.run(stream.id, oldest.id, oldest.id);
      removed = this.account(stream, oldest.count, oldest.size);
    }
    this.countDrop(stream.name, reason, removed);
    return removed;
  }

  private account(stream: StreamState, records: number, payloadBytes: number): number {
    const bytes = payloadBytes + CHUNK_OVERHEAD;
    stream.records -= records;
    stream.bytes -= bytes;
    this.totalRecords -= records;
    this.totalBytes -= bytes;
    return records;
  }

  /** Puts salvaged chunks, cursors and drop counters into this (fresh) queue and counts what was lost. */
  adopt(saved: Salvage, now: number): void {
    this.db.transaction(() => {
      for (const chunk of saved.chunks) {
        const stream = this.stream(chunk.stream);
        // No checksum: what was salvaged is not known to be what was written.
        this.stmt.insertChunk.run(stream.id, chunk.count, Math.min(chunk.created, now), chunk.codec, chunk.payload, null, null);
      }
      for (const c of saved.cursors) this.stmt.upsertCursor.run(c.source, c.value);
      // Carried-over counters are history, not new drops: restored as they were, not counted again.
      for (const d of saved.drops) this.dropsFor(d.stream).set(d.reason as DropReason, d.records);
      for (const d of saved.drops) this.dirtyDrops.add(d.stream);
      if (saved.lostRecords > 0 || saved.lostChunks > 0) {
        const map = this.dropsFor('(unknown)');
        map.set('corrupt', (map.get('corrupt') ?? 0) + saved.lostRecords);
        this.dirtyDrops.add('(unknown)');
      }
      this.persistDrops();
    })();
    this.load();
  }
}
