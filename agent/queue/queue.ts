import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { AgentError } from '../errors.ts';
import type { AgentRecord, Cursor } from '../sdk/index.ts';
import { COMPRESSION_ID, compress, compressionFromId, decodeRecords, decompress, encodeRecords } from '../envelope/codec.ts';
import { encodeChunks, type EncodedChunk } from './chunking.ts';
import { DiskWatermark } from './disk.ts';
import type { DrainOrder, DropReason, LeasedBatch, QueueOptions, QueueStats } from './types.ts';
import { checkWalHeader, quarantine, salvage, type RecoveryReport, type Salvage } from './recovery.ts';
import {
  type BatchRow,
  CHUNK_OVERHEAD,
  checkpointWal,
  corruptionOf,
  markClean,
  openStore,
  prepareStatements,
  readStoredView,
  type Statements,
} from './storage.ts';

export type { DrainOrder, DropReason, FullPolicy, LeasedBatch, QueueOptions, QueueStats, StreamOptions } from './types.ts';

interface StreamState {
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

interface PendingEmit {
  stream: string;
  records: AgentRecord[];
  cursor: { source: string; value: Cursor } | undefined;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const DEFAULT_PRIORITY = 50;

/**
 * The durable queue: SQLite in WAL mode. Every record is committed here (with its source's cursor, in the
 * same transaction) before the source is told it was accepted; rows leave only when the sink acknowledged
 * the batch that carries them.
 */
export class Queue {
  private readonly db: Database.Database;
  private readonly opts: QueueOptions;
  private readonly now: () => number;
  private readonly streams = new Map<string, StreamState>();
  private readonly streamsById = new Map<number, StreamState>();
  private readonly cursors = new Map<string, Cursor>();
  private readonly drops = new Map<string, Map<DropReason, number>>();
  private readonly dirtyDrops = new Set<string>();
  private totalBytes = 0;
  private totalRecords = 0;
  private committedRecords = 0;
  private commitCount = 0;

  private pending: PendingEmit[] = [];
  private pendingRecords = 0;
  private pendingAcks: { stream: StreamState; seq: number }[] = [];
  private readonly ackedKeys = new Set<string>();
  private commitTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private spaceWaiters: (() => void)[] = [];
  private dataListeners = new Set<() => void>();
  private closed = false;

  private readonly stmt: Statements;
  /** This queue's epoch: batch sequences are unique within it (see envelope header). */
  readonly epoch: Uint8Array;
  /** Set when the file found at open was unusable and was replaced (see `open`). */
  recovery: RecoveryReport | undefined;
  private readonly disk: DiskWatermark;
  /** While the disk is low: the queue may not hold more than it held when space ran low. */
  private diskCap = Number.POSITIVE_INFINITY;
  private diskTimer: NodeJS.Timeout | undefined;
  private damaged = false;
  /** Batches the sender asked for while a commit was due: recorded inside that commit. */
  private batchDemand = 0;
  private syncTimer: NodeJS.Timeout | undefined;

  private constructor(db: Database.Database, opts: QueueOptions, epoch: Uint8Array) {
    this.db = db;
    this.epoch = epoch;
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.stmt = prepareStatements(db);
    this.load();
    this.disk = new DiskWatermark(dirname(opts.path), opts.minFreeDisk ?? 0);
    this.checkDisk();
    this.diskTimer = setInterval(() => this.checkDisk(), 1_000).unref();
    if (opts.synchronous === 'normal') {
      // In WAL mode with synchronous=NORMAL, SQLite syncs the WAL only before a checkpoint, which by default
      // comes after 1000 pages: for a slow source that is half an hour of acknowledged data a power cut
      // would take. A passive checkpoint on a timer bounds the window in time.
      this.syncTimer = setInterval(() => this.syncWal(), opts.syncIntervalMs ?? 1_000).unref();
    }
    const every = Math.max(1_000, Math.min(60_000, Math.floor(opts.maxAgeMs / 4)));
    this.expiryTimer = setInterval(() => this.expire(), every).unref();
    this.expire();
  }

  /**
   * Opens the queue. A file that is corrupt, garbled, foreign, or whose WAL is invalid is quarantined
   * (renamed, never deleted); what can be read from it is salvaged into a fresh queue and the loss is
   * counted (drops with reason `corrupt`) and reported in `recovery`. Failures of the environment (no
   * space, no permission) are thrown: renaming a healthy file because the disk is full would be wrong.
   */
  static open(opts: QueueOptions): Queue {
    try {
      mkdirSync(dirname(opts.path), { recursive: true });
    } catch (cause) {
      throw new AgentError('QUEUE_OPEN_FAILED', `cannot create the queue directory ${dirname(opts.path)}`, { cause });
    }
    let problem = checkWalHeader(opts.path);
    if (!problem) {
      try {
        return Queue.openFile(opts);
      } catch (cause) {
        problem = corruptionOf(cause);
        if (problem === undefined) throw new AgentError('QUEUE_OPEN_FAILED', `cannot open queue ${opts.path}`, { cause });
      }
    }
    const now = (opts.now ?? Date.now)();
    const quarantinedAs = quarantine(opts.path, now);
    const saved = salvage(quarantinedAs);
    let queue: Queue;
    try {
      queue = Queue.openFile(opts);
    } catch (cause) {
      throw new AgentError('QUEUE_OPEN_FAILED', `cannot create a fresh queue at ${opts.path} after quarantining the old one as ${quarantinedAs}`, { cause });
    }
    queue.recovery = queue.adopt(saved, problem, quarantinedAs);
    opts.log.error({ recovery: queue.recovery }, 'queue file was unusable: quarantined, salvaged what could be read, continuing with a fresh queue');
    return queue;
  }

  private static openFile(opts: QueueOptions): Queue {
    const { db, epoch } = openStore(opts);
    try {
      return new Queue(db, opts, epoch);
    } catch (cause) {
      db.close();
      throw cause;
    }
  }

  /** Puts salvaged chunks, cursors and drop counters into this (fresh) queue and counts what was lost. */
  private adopt(saved: Salvage, reason: string, quarantinedAs: string): RecoveryReport {
    const now = this.now();
    this.db.transaction(() => {
      for (const chunk of saved.chunks) {
        let stream = this.streams.get(chunk.stream);
        if (!stream) {
          const row = this.stmt.insertStream.get(chunk.stream) as { id: number; next_seq: number };
          stream = this.addStreamState(row.id, chunk.stream, row.next_seq);
        }
        this.stmt.insertChunk.run(stream.id, chunk.count, Math.min(chunk.created, now), chunk.codec, chunk.payload);
      }
      for (const c of saved.cursors) this.stmt.upsertCursor.run(c.source, c.value);
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
    return {
      reason,
      quarantinedAs,
      salvagedChunks: saved.chunks.length,
      salvagedRecords: saved.chunks.reduce((n, c) => n + c.count, 0),
      lostChunks: saved.lostChunks,
      lostRecords: saved.lostRecords,
      salvagedCursors: saved.cursors.length,
    };
  }

  /** Rebuilds the in-memory view (totals, batches, cursors) from the database, which is the truth. */
  private load(): void {
    const view = readStoredView(this.db);
    this.streams.clear();
    this.streamsById.clear();
    this.totalBytes = 0;
    this.totalRecords = 0;
    for (const row of view.streams) this.addStreamState(row.id, row.name, row.next_seq);
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

  private dropsFor(stream: string): Map<DropReason, number> {
    let map = this.drops.get(stream);
    if (!map) this.drops.set(stream, (map = new Map()));
    return map;
  }

  private countDrop(stream: string, reason: DropReason, records: number): void {
    if (records <= 0) return;
    const map = this.dropsFor(stream);
    map.set(reason, (map.get(reason) ?? 0) + records);
    this.dirtyDrops.add(stream);
    this.opts.log.warn({ stream, reason, records }, 'records dropped');
  }

  cursor(source: string): Cursor | undefined {
    return this.cursors.get(source);
  }

  /**
   * Accepts records (and optionally the source's new cursor). Resolves when both are committed. Records
   * become the queue's: `ts` (ms) is stamped on those that lack one.
   */
  enqueue(stream: string, records: AgentRecord[], cursor?: { source: string; value: Cursor }): Promise<void> {
    if (this.closed) return Promise.reject(new AgentError('QUEUE_CLOSED', 'queue is closed'));
    const now = this.now();
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      if (typeof r !== 'object' || r === null || Array.isArray(r)) {
        // A driver bug, not the data's fault: drop what is not a record, count it, keep the rest.
        const kept = records.filter((x) => typeof x === 'object' && x !== null && !Array.isArray(x));
        this.countDrop(stream, 'invalid', records.length - kept.length);
        this.opts.log.error({ stream, records: records.length - kept.length }, 'values that are not records (plain objects) were dropped');
        return this.enqueue(stream, kept, cursor);
      }
      if (r.ts === undefined) r.ts = now;
    }
    const target = this.streams.get(stream);
    if (this.opts.fullPolicy === 'block' && (this.totalBytes >= this.limit() || (target !== undefined && target.bytes >= target.maxBytes))) {
      return new Promise<void>((resolve) => this.spaceWaiters.push(resolve)).then(() => this.enqueue(stream, records, cursor));
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ stream, records, cursor, resolve, reject });
      this.pendingRecords += records.length;
      if (this.pendingRecords >= this.opts.commitEveryRecords) this.scheduleCommit(0);
      else this.scheduleCommit(this.opts.commitIntervalMs);
    });
  }

  private scheduleCommit(inMs: number): void {
    if (this.commitTimer) {
      if (inMs > 0) return;
      clearTimeout(this.commitTimer);
    }
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      this.commit();
    }, inMs);
  }

  /** Commits everything waiting (records, cursors, acknowledgements) now. */
  async flush(): Promise<void> {
    clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    this.commit();
  }

  private encodePending(emits: PendingEmit[]): Map<string, { chunks: EncodedChunk[] }> {
    const byStream = new Map<string, PendingEmit[]>();
    for (const e of emits) {
      let list = byStream.get(e.stream);
      if (!list) byStream.set(e.stream, (list = []));
      list.push(e);
    }
    const out = new Map<string, { chunks: EncodedChunk[] }>();
    const { batchMaxRecords, batchMaxBytes, codec } = this.opts;
    for (const [stream, list] of byStream) {
      const records = list.length === 1 ? list[0]!.records : list.flatMap((e) => e.records);
      try {
        out.set(stream, { chunks: encodeChunks(records, batchMaxRecords, batchMaxBytes, codec) });
      } catch {
        // Some record holds a value CBOR cannot carry (a function, a symbol…): that record alone is dropped
        // and counted; the rest, and the source's cursor, go on. A source must never stall on one bad row.
        const good: AgentRecord[] = [];
        let bad = 0;
        let example: unknown;
        for (const record of records) {
          try {
            encodeRecords([record]);
            good.push(record);
          } catch (err) {
            bad++;
            example ??= err;
          }
        }
        this.countDrop(stream, 'invalid', bad);
        this.opts.log.error({ stream, records: bad, err: (example as Error)?.message }, 'records that cannot be encoded were dropped');
        out.set(stream, { chunks: encodeChunks(good, batchMaxRecords, batchMaxBytes, codec) });
      }
    }
    return out;
  }

  private commit(): void {
    if (this.closed) return;
    const emits = this.pending;
    const acks = this.pendingAcks;
    if (emits.length === 0 && acks.length === 0 && this.dirtyDrops.size === 0) return;
    this.pending = [];
    this.pendingRecords = 0;
    this.pendingAcks = [];
    const encoded = this.encodePending(emits);
    const demand = this.batchDemand;
    this.batchDemand = 0;
    let recorded = 0;
    this.checkDisk();
    const now = this.now();
    const codecId = COMPRESSION_ID[this.opts.codec.compression];
    let accepted = 0;
    try {
      this.db.transaction(() => {
        for (const [name, { chunks }] of encoded) {
          let stream = this.streams.get(name);
          if (!stream) {
            const row = this.stmt.insertStream.get(name) as { id: number; next_seq: number };
            stream = this.addStreamState(row.id, name, row.next_seq);
          }
          for (const chunk of chunks) {
            const size = chunk.payload.length + CHUNK_OVERHEAD;
            if (this.opts.fullPolicy === 'drop_newest' && (this.totalBytes + size > this.limit() || stream.bytes + size > stream.maxBytes)) {
              this.countDrop(name, stream.bytes + size > stream.maxBytes ? 'queue_full' : this.fullReason(), chunk.count);
              continue;
            }
            this.stmt.insertChunk.run(stream.id, chunk.count, now, codecId, chunk.payload);
            stream.records += chunk.count;
            stream.bytes += size;
            this.totalBytes += size;
            this.totalRecords += chunk.count;
            accepted += chunk.count;
          }
        }
        const lastCursor = new Map<string, Cursor>();
        for (const e of emits) if (e.cursor) lastCursor.set(e.cursor.source, e.cursor.value);
        for (const [source, value] of lastCursor) this.stmt.upsertCursor.run(source, JSON.stringify(value));
        for (const ack of acks) this.removeBatch(ack.stream, ack.seq);
        if (this.opts.fullPolicy === 'drop_oldest') this.dropOldestUntilFits();
        if (demand > 0) recorded = this.recordDemandedBatches(demand);
        this.persistDrops();
        for (const [source, value] of lastCursor) this.cursors.set(source, value);
      })();
    } catch (cause) {
      // The transaction rolled back; the database is the truth again. Acks are retried with the next commit.
      if ((cause as { code?: unknown }).code === 'SQLITE_FULL') this.diskFilled();
      if (corruptionOf(cause) !== undefined) {
        // Damage found while running: never mark this file clean, so the next start checks, quarantines and
        // salvages it.
        this.damaged = true;
        this.opts.log.fatal({ err: (cause as Error).message }, 'queue file is damaged; restart the agent to quarantine and salvage it');
      }
      this.load();
      this.pendingAcks.push(...acks);
      const err = new AgentError('QUEUE_WRITE_FAILED', `queue commit failed: ${(cause as Error).message}`, { cause, retryable: true });
      for (const e of emits) e.reject(err);
      this.opts.log.error({ err: err.message, records: emits.reduce((n, e) => n + e.records.length, 0) }, 'queue commit failed');
      return;
    }
    for (const ack of acks) this.ackedKeys.delete(`${ack.stream.name}:${ack.seq}`);
    this.committedRecords += accepted;
    this.commitCount++;
    for (const e of emits) e.resolve();
    if (accepted > 0 || recorded > 0) for (const listener of this.dataListeners) listener();
    if (acks.length > 0) this.wakeSpaceWaiters();
  }

  /** Deletes a batch and its chunks (inside a transaction). Idempotent: a batch already gone is a no-op. */
  private removeBatch(stream: StreamState, seq: number): number {
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
  private removeOldest(stream: StreamState, reason: DropReason, olderThan?: number): number {
    const oldest = this.stmt.oldestChunk.get(stream.id) as { id: number; count: number; created: number; size: number } | undefined;
    if (!oldest || (olderThan !== undefined && oldest.created >= olderThan)) return 0;
    let removed: number;
    // A chunk that is part of a recorded batch goes with its whole batch, so a re-send never differs.
    const batch = [...stream.batches.values()].find((b) => b.firstChunk <= oldest.id && oldest.id <= b.lastChunk);
    if (batch) {
      removed = this.removeBatch(stream, batch.seq);
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

  /** drop_oldest: lowest priority first, oldest first within a stream. */
  private dropOldestUntilFits(): void {
    for (const stream of this.streams.values()) {
      while (stream.bytes > stream.maxBytes && this.removeOldest(stream, 'queue_full') > 0);
    }
    const reason = this.fullReason();
    while (this.totalBytes > this.limit()) {
      const victim = [...this.streams.values()].filter((s) => s.records > 0).sort((a, b) => a.priority - b.priority || a.id - b.id)[0];
      if (!victim || this.removeOldest(victim, reason) === 0) break;
    }
  }

  private persistDrops(): void {
    for (const stream of this.dirtyDrops) {
      for (const [reason, records] of this.dropsFor(stream)) this.stmt.upsertDrops.run(stream, reason, records);
    }
    this.dirtyDrops.clear();
  }

  /** Removes records older than max_age. */
  expire(): void {
    if (this.closed) return;
    // Acknowledged batches leave first: expiring them would count delivered records as dropped.
    if (this.pendingAcks.length > 0) this.commit();
    const now = this.now();
    try {
      this.db.transaction(() => {
        for (const stream of this.streams.values()) {
          const cutoff = now - stream.maxAgeMs;
          while (stream.records > 0 && this.removeOldest(stream, 'expired', cutoff) > 0);
        }
        this.persistDrops();
      })();
    } catch (cause) {
      this.load();
      this.opts.log.error({ err: (cause as Error).message }, 'queue expiry failed');
      return;
    }
    this.wakeSpaceWaiters();
  }

  private wakeSpaceWaiters(): void {
    // Waiters re-check their own stream's bound when they retry.
    if (this.spaceWaiters.length === 0) return;
    const waiters = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const wake of waiters) wake();
  }

  /** The byte bound in force: max_bytes, or while the disk is low what the queue held when it ran low. */
  private limit(): number {
    return Math.min(this.opts.maxBytes, this.diskCap);
  }

  private fullReason(): DropReason {
    return this.diskCap < this.opts.maxBytes && this.totalBytes >= this.diskCap ? 'disk_full' : 'queue_full';
  }

  private syncWal(): void {
    if (this.closed) return;
    try {
      checkpointWal(this.db);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'periodic WAL sync failed; the next one retries');
    }
  }

  /** Re-reads the free disk space now (also done every second and at every commit). */
  checkDisk(): void {
    if (!this.disk.check()) return;
    if (this.disk.low) this.enterDiskLow();
    else this.leaveDiskLow();
  }

  /** SQLite reported a full disk: the watermark was too low or something else filled the disk. */
  private diskFilled(): void {
    if (!this.disk.low) {
      this.disk.markLow();
      this.enterDiskLow();
    }
  }

  private enterDiskLow(): void {
    this.diskCap = this.totalBytes;
    this.opts.log.error(
      { free: this.disk.free, minFree: this.opts.minFreeDisk, heldBytes: this.totalBytes, policy: this.opts.fullPolicy },
      'disk space low: the queue stops growing and applies its full policy',
    );
  }

  private leaveDiskLow(): void {
    this.diskCap = Number.POSITIVE_INFINITY;
    this.opts.log.warn({ free: this.disk.free }, 'disk space is back: the queue may grow again');
    this.wakeSpaceWaiters();
  }

  /** Calls `listener` whenever newly committed records may make a batch. Returns an unsubscribe function. */
  onData(listener: () => void): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }

  /**
   * The next batch to send, skipping those in `busy` (in flight). Higher-priority streams first; within a
   * stream, batches recorded earlier (not yet acknowledged, e.g. from before a crash) before new ones.
   */
  nextBatch(busy: ReadonlySet<string>, room = 1): LeasedBatch | undefined {
    if (this.closed) return undefined;
    const ordered = [...this.streams.values()].sort((a, b) => b.priority - a.priority || a.id - b.id);
    for (const stream of ordered) {
      for (const batch of stream.batches.values()) {
        const key = `${stream.name}:${batch.seq}`;
        if (!busy.has(key) && !this.ackedKeys.has(key)) return this.materialise(stream, batch);
      }
      if (stream.records > stream.batchedRecords) {
        if (this.pending.length > 0) {
          // A commit is coming anyway (records wait for it): record the batches in that transaction rather
          // than in one of their own. At low ingest rates this halves the commits, and so the bytes written.
          this.batchDemand = Math.max(this.batchDemand, Math.max(1, room));
          return undefined;
        }
        const batch = this.recordBatches(stream, Math.max(1, room));
        if (batch) return this.materialise(stream, batch);
      }
    }
    return undefined;
  }

  /** Records up to `max` batches, highest-priority streams first (inside the commit's transaction). */
  private recordDemandedBatches(max: number): number {
    let made = 0;
    const ordered = [...this.streams.values()].sort((a, b) => b.priority - a.priority || a.id - b.id);
    for (const stream of ordered) {
      while (made < max && stream.records > stream.batchedRecords) {
        const before = stream.batches.size;
        if (!this.recordBatches(stream, max - made)) break;
        made += stream.batches.size - before;
      }
    }
    return made;
  }

  /** True while some record is neither acknowledged nor waiting for its acknowledgement to be committed. */
  hasUnsent(): boolean {
    for (const s of this.streams.values()) {
      if (s.records > s.batchedRecords) return true;
      for (const seq of s.batches.keys()) if (!this.ackedKeys.has(`${s.name}:${seq}`)) return true;
    }
    return false;
  }

  /**
   * Writes down up to `max` next batches of a stream (sequence → chunk range, time) in one transaction, so
   * a sender with room for several batches pays one fsync for all of them. Returns the first.
   *
   * Chunks not yet in a batch are the gaps between the recorded ranges. Oldest first fills the first gaps;
   * live first takes the newest chunks (after the last range) first, newest batch first, and fills the older
   * gaps only when nothing newer waits.
   */
  private recordBatches(stream: StreamState, max: number): BatchRow | undefined {
    type Row = { id: number; count: number; size: number };
    const { batchMaxRecords } = this.opts;
    // Every chunk holds at least one record, so max × batchMaxRecords rows always cover `max` batches.
    const limit = max * batchMaxRecords;
    const ranges = [...stream.batches.values()].map((b) => [b.firstChunk, b.lastChunk] as const).sort((a, b) => a[0] - b[0]);
    const groups: Row[][] = [];
    if (stream.drain === 'live_first') {
      const after = ranges.reduce((m, r) => Math.max(m, r[1]), 0);
      const newestFirst = this.stmt.newestAfter.all(stream.id, after, limit) as Row[];
      // Cut from the newest end, so the most recent records form the first batch; each batch's chunks are
      // then put back in ascending order (a batch is a chunk range).
      for (const group of this.group(newestFirst).slice(0, max)) groups.push([...group].reverse());
      // The gap scan below must not take these rows (or the rest of the tail) again in this call.
      if (newestFirst.length > 0) ranges.push([newestFirst[newestFirst.length - 1]!.id, Number.MAX_SAFE_INTEGER]);
    }
    let gapStart = 0;
    for (const [first, last] of [...ranges, [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] as const]) {
      if (groups.length >= max) break;
      if (first > gapStart + 1) {
        const rows = this.stmt.chunksBetween.all(stream.id, gapStart, first, limit) as Row[];
        groups.push(...this.group(rows).slice(0, max - groups.length));
      }
      gapStart = Math.max(gapStart, last);
    }
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

  /** Cuts consecutive chunk rows into batches of at most batch.max_records records and batch.max_bytes. */
  private group<R extends { count: number; size: number }>(rows: R[]): R[][] {
    const { batchMaxRecords, batchMaxBytes } = this.opts;
    const out: R[][] = [];
    let current: R[] = [];
    let count = 0;
    let bytes = 0;
    for (const row of rows) {
      if (current.length > 0 && (count + row.count > batchMaxRecords || bytes + row.size > batchMaxBytes)) {
        out.push(current);
        current = [];
        count = 0;
        bytes = 0;
      }
      current.push(row);
      count += row.count;
      bytes += row.size;
    }
    if (current.length > 0) out.push(current);
    return out;
  }

  /** Reads a batch's body. A single chunk in the current codec is used as stored: no re-encoding. */
  private materialise(stream: StreamState, batch: BatchRow): LeasedBatch {
    const rows = this.stmt.payloads.all(stream.id, batch.firstChunk, batch.lastChunk) as { codec: number; payload: Buffer }[];
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
        for (const r of decodeRecords(decompress(row.payload, compression, Number.MAX_SAFE_INTEGER))) records.push(r);
      }
      body = compress(encodeRecords(records), current);
    }
    return {
      stream: stream.name,
      seq: batch.seq,
      count: batch.count,
      created: batch.created,
      compression: current.compression,
      body,
      key: `${stream.name}:${batch.seq}`,
    };
  }

  /** The sink acknowledged the batch: its rows go with the next commit (a lost ack only means a re-send). */
  ack(batch: LeasedBatch): void {
    const stream = this.streams.get(batch.stream);
    if (!stream || this.closed) return;
    this.ackedKeys.add(batch.key);
    this.pendingAcks.push({ stream, seq: batch.seq });
    this.scheduleCommit(this.opts.commitIntervalMs);
  }

  /** The sink refused the batch for good (poison): set it aside, counted as dropped. */
  reject(batch: LeasedBatch): void {
    const stream = this.streams.get(batch.stream);
    if (!stream || this.closed) return;
    this.db.transaction(() => {
      const removed = this.removeBatch(stream, batch.seq);
      this.countDrop(stream.name, 'rejected', removed);
      this.persistDrops();
    })();
    this.wakeSpaceWaiters();
  }

  stats(): QueueStats {
    const streams: QueueStats['streams'] = {};
    for (const s of this.streams.values()) streams[s.name] = { records: s.records, bytes: s.bytes, pendingBatches: s.batches.size, nextSeq: s.nextSeq };
    const drops: QueueStats['drops'] = {};
    for (const [stream, map] of this.drops) drops[stream] = Object.fromEntries(map);
    return {
      records: this.totalRecords,
      bytes: this.totalBytes,
      streams,
      drops,
      committed: this.committedRecords,
      commits: this.commitCount,
      disk: { free: this.disk.free, low: this.disk.low },
    };
  }

  /** Commits what waits, then closes the database. */
  close(): void {
    if (this.closed) return;
    clearTimeout(this.commitTimer);
    clearInterval(this.expiryTimer);
    clearInterval(this.diskTimer);
    clearInterval(this.syncTimer);
    this.commit();
    this.closed = true;
    for (const wake of this.spaceWaiters) wake();
    try {
      if (!this.damaged) markClean(this.db);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not mark the queue as cleanly closed; it will be checked at the next start');
    }
    this.db.close();
  }
}
