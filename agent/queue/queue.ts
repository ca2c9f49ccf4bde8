/**
 * The durable queue's facade: what the rest of the agent calls. It owns the timing (when a commit happens,
 * what waits for it, who is woken after) and delegates the rest: SQL to storage, totals and drop counters to
 * the ledger, bounds and expiry to the bounds, batch planning to the planner, the writes that must pass on a
 * full disk to the space keeper, the check that the file is still at its path to the file watch.
 *
 * Why this file is long: every entry point the agent calls (open, enqueue, commit, nextBatch, ack, reject,
 * expire, close) has to be ordered against the commit timer, the waiters and the in-flight leases, and that
 * ordering is the one thing here that cannot be split without spreading one state machine over files.
 */
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { AgentError, describeError, isAgentError } from '../errors.ts';
import { isRecordRows, type Cursor, type EmittedRecords, type RecordRows } from '../domain/record.ts';
import { COMPRESSION_ID } from '../envelope/codec.ts';
import { chunkByStream, writeEmit, type WrittenEmit } from './chunking.ts';
import { RecordWriter } from '../envelope/record-writer.ts';
import { quarantine, salvage, checkWalHeader, type RecoveryReport } from './recovery.ts';
import { type BatchRow, checkpointWal, corruptionOf, markClean, openStore, prepareStatements } from './storage.ts';
import { queueMetrics, type QueueMetrics } from './metrics.ts';
import { Telemetry } from '../telemetry/registry.ts';
import { Ledger, type StreamState } from './ledger.ts';
import { Bounds } from './bounds.ts';
import { BatchPlanner } from './planner.ts';
import { DEFAULT_RESERVE_BYTES, isDiskFull, SpaceReserve } from './reserve.ts';
import { SpaceKeeper } from './space.ts';
import { SequenceMark } from './sequences.ts';
import { FileWatch } from './file-watch.ts';
import type { DropReason, LeasedBatch, QueueOptions, QueueStats } from './types.ts';
import { makeDirs } from '../util/make-dirs.ts';

export type { WrittenEmit } from './chunking.ts';
export type { DrainOrder, DropReason, FullPolicy, LeasedBatch, QueueOptions, QueueStats, StreamOptions } from './types.ts';

interface PendingEmit {
  stream: string;
  /** The emit's records, already CBOR: no record object waits for the commit (record-writer.ts). */
  written: WrittenEmit;
  cursor: { source: string; value: Cursor } | undefined;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The durable queue: SQLite in WAL mode. Every record is committed here (with its source's cursor, in the
 * same transaction) before the source is told it was accepted; rows leave only when the sink acknowledged
 * the batch that carries them.
 */
export class Queue {
  private readonly db: Database.Database;
  private readonly opts: QueueOptions;
  private readonly now: () => number;
  private readonly ledger: Ledger;
  private readonly bounds: Bounds;
  private readonly planner: BatchPlanner;
  private readonly metrics: QueueMetrics;
  private readonly space: SpaceKeeper;
  private readonly fileWatch: FileWatch;

  private pending: PendingEmit[] = [];
  /** Writes emits as CBOR when they are handed over; its working buffer is reused (and capped). */
  private readonly writer = new RecordWriter();
  private pendingRecords = 0;
  private pendingAcks: { stream: StreamState; seq: number }[] = [];
  private readonly ackedKeys = new Set<string>();
  private commitTimer: NodeJS.Timeout | undefined;
  /** When the scheduled commit fires (monotonic ms), so an emit that must commit sooner can bring it forward. */
  private commitDueAt = 0;
  private expiryTimer: NodeJS.Timeout | undefined;
  private spaceWaiters: (() => void)[] = [];
  private dataListeners = new Set<() => void>();
  private closed = false;

  /** This queue's epoch: batch sequences are unique within it (see envelope header). */
  readonly epoch: Uint8Array;
  /** Set when the file found at open was unusable and was replaced (see `open`). */
  recovery: RecoveryReport | undefined;
  private diskTimer: NodeJS.Timeout | undefined;
  private damaged = false;
  /** Batches the sender asked for while a commit was due: recorded inside that commit. */
  private batchDemand = 0;
  /** Damaged batches set aside so far (readOrSetAside): pickBatch looks again after one. */
  private setAside = 0;
  /** The last `maxBytes` the sender passed: bounds the batches the next commit records for it. */
  private batchCap: ((stream: string) => number) | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  /** SQLite's count of commits by other connections: `edge-agent queue purge|replay` write beside us. */
  private dataVersion: number;
  /**
   * `PRAGMA data_version`, prepared once: `db.pragma()` prepares (and later finalises) a statement at every
   * call, and this is read at every commit and every `nextBatch` (≈5 % of the agent's CPU end to end).
   * The value is read when the statement runs, so a kept statement sees other connections' commits.
   */
  private readonly dataVersionStatement: Database.Statement<[], number>;

  /** `cleanStart`: the last run closed the file, so its batch sequences are all in it. */
  private constructor(db: Database.Database, opts: QueueOptions, epoch: Uint8Array, cleanStart = true) {
    this.db = db;
    this.epoch = epoch;
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    const stmt = prepareStatements(db);
    const sequences = new SequenceMark(opts.path, epoch, opts.synchronous === 'normal');
    // After an unclean stop the file may have rolled back (synchronous normal): continue above the mark.
    this.ledger = new Ledger(db, stmt, opts, cleanStart ? undefined : (stream) => sequences.floor(stream));
    this.bounds = new Bounds(this.ledger, opts, dirname(opts.path), () => (this.closed ? 0 : this.space.reusableBytes()));
    const reserve = new SpaceReserve(opts.path, opts.reserveBytes ?? DEFAULT_RESERVE_BYTES, opts.log);
    this.space = new SpaceKeeper(db, this.ledger, this.bounds, reserve, sequences);
    this.planner = new BatchPlanner(db, stmt, opts, this.ledger, (stream, last) => this.space.reserveSequences(stream, last));
    this.metrics = queueMetrics(opts.telemetry ?? new Telemetry(), this.ledger, () => this.bounds.disk);
    this.fileWatch = new FileWatch(db, opts.path, opts.log, this.metrics.fileReplaced, opts.now ?? Date.now);
    this.dataVersionStatement = db.prepare<[], number>('PRAGMA data_version').pluck();
    this.dataVersion = this.dataVersionStatement.get()!;
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
      // The directories holding the queue are the agent's own: nobody else lists or reads them.
      makeDirs(dirname(opts.path));
    } catch (cause) {
      throw new AgentError('QUEUE_OPEN_FAILED', `cannot create the queue directory ${dirname(opts.path)}`, { cause });
    }
    let problem = checkWalHeader(opts.path);
    if (!problem) {
      try {
        return Queue.openFile(opts);
      } catch (cause) {
        problem = corruptionOf(cause);
        if (problem === undefined && isDiskFull(cause)) {
          // A full disk must not keep the queue from opening (and so from draining): the reserve left by the
          // last run makes room for the WAL and the open's own small write.
          if (new SpaceReserve(opts.path, 0, opts.log).release('opening the queue')) return Queue.open(opts);
        }
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
    queue.ledger.adopt(saved, queue.now());
    queue.recovery = {
      reason: problem,
      quarantinedAs,
      salvagedChunks: saved.chunks.length,
      salvagedRecords: saved.chunks.reduce((n, c) => n + c.count, 0),
      lostChunks: saved.lostChunks,
      lostRecords: saved.lostRecords,
      salvagedCursors: saved.cursors.length,
    };
    opts.log.error({ recovery: queue.recovery }, 'queue file was unusable: quarantined, salvaged what could be read, continuing with a fresh queue');
    return queue;
  }

  private static openFile(opts: QueueOptions): Queue {
    const { db, epoch, cleanStart } = openStore(opts);
    try {
      return new Queue(db, opts, epoch, cleanStart);
    } catch (cause) {
      db.close();
      throw cause;
    }
  }

  /**
   * True while a record given to `enqueue` for `stream` would not be taken at once: under `block` it would
   * wait for room, under `drop_newest` it would be dropped. Under `drop_oldest` new records always go in.
   * For sources that must answer their sender now (an HTTP request) rather than wait or be dropped silently.
   */
  refusesNew(stream: string): boolean {
    return this.opts.fullPolicy !== 'drop_oldest' && this.bounds.full(stream);
  }

  cursor(source: string): Cursor | undefined {
    return this.ledger.cursor(source);
  }

  /**
   * Accepts records (and optionally the source's new cursor). Resolves when both are committed. Records
   * become the queue's: `ts` (ms) is stamped on those that lack one. `commitWithinMs` brings the group commit
   * forward for a source whose peer waits for the acknowledgement (a request/response protocol): waiting
   * longer would only add latency, since such a peer sends nothing more until it is answered.
   */
  enqueue(stream: string, records: EmittedRecords, cursor?: { source: string; value: Cursor }, commitWithinMs?: number): Promise<void> {
    if (this.closed) return Promise.reject(new AgentError('QUEUE_CLOSED', 'queue is closed'));
    return this.enqueueWritten(stream, this.write(stream, records), cursor, commitWithinMs);
  }

  /**
   * Stamps `ts` (ms) on the records that lack one and writes them as CBOR now, so that only bytes wait for
   * the commit: records that waited as objects outlived the young generation and were promoted (a quarter of
   * the CPU end to end went to the collector). Records that cannot be sent are dropped and counted here.
   * The emit budget charges the written bytes (source-runner.ts).
   */
  write(stream: string, records: EmittedRecords): WrittenEmit {
    const now = this.now();
    if (isRecordRows(records)) return this.writeRows(stream, records, now);
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      if (typeof r !== 'object' || r === null || Array.isArray(r)) {
        // A driver bug, not the data's fault: drop what is not a record, count it, keep the rest.
        const kept = records.filter((x) => typeof x === 'object' && x !== null && !Array.isArray(x));
        this.ledger.countDrop(stream, 'invalid', records.length - kept.length);
        this.opts.log.error({ stream, records: records.length - kept.length }, 'values that are not records (plain objects) were dropped');
        return this.write(stream, kept);
      }
      if (r.ts === undefined) r.ts = now;
    }
    return writeEmit(this.writer, stream, records, this.opts.batchMaxBytes, this.ledger, this.opts.log);
  }

  /** `write` for rows that share their keys: `ts` stamped as on records (appended, or where a row has none). */
  private writeRows(stream: string, records: RecordRows, now: number): WrittenEmit {
    const rows = records.rows;
    for (let i = 0; i < rows.length; i++) {
      if (!Array.isArray(rows[i])) {
        const kept = rows.filter((row) => Array.isArray(row));
        this.ledger.countDrop(stream, 'invalid', rows.length - kept.length);
        this.opts.log.error({ stream, records: rows.length - kept.length }, 'rows that are not arrays were dropped');
        return this.writeRows(stream, { columns: records.columns, rows: kept }, now);
      }
    }
    const at = records.columns.indexOf('ts');
    if (at !== -1) for (let i = 0; i < rows.length; i++) if (rows[i]![at] === undefined) rows[i]![at] = now;
    return writeEmit(this.writer, stream, records, this.opts.batchMaxBytes, this.ledger, this.opts.log, at === -1 ? now : undefined);
  }

  /** `enqueue` for records already written (`write`). */
  enqueueWritten(stream: string, written: WrittenEmit, cursor?: { source: string; value: Cursor }, commitWithinMs?: number): Promise<void> {
    if (this.closed) return Promise.reject(new AgentError('QUEUE_CLOSED', 'queue is closed'));
    if (this.opts.fullPolicy === 'block' && this.bounds.full(stream)) {
      return new Promise<void>((resolve) => this.spaceWaiters.push(resolve)).then(() => this.enqueueWritten(stream, written, cursor, commitWithinMs));
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ stream, written, cursor, resolve, reject });
      this.pendingRecords += written.records.count;
      if (this.pendingRecords >= this.opts.commitEveryRecords) this.scheduleCommit(0);
      else this.scheduleCommit(Math.min(this.opts.commitIntervalMs, commitWithinMs ?? Number.POSITIVE_INFINITY));
    });
  }

  private scheduleCommit(inMs: number): void {
    const dueAt = performance.now() + inMs;
    if (this.commitTimer) {
      if (dueAt >= this.commitDueAt) return;
      clearTimeout(this.commitTimer);
    }
    this.commitDueAt = dueAt;
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

  private commit(): void {
    if (this.closed) return;
    this.reloadIfChangedElsewhere();
    const emits = this.pending;
    const acks = this.pendingAcks;
    if (emits.length === 0 && acks.length === 0 && !this.ledger.hasUnwrittenDrops()) return;
    this.pending = [];
    this.pendingRecords = 0;
    this.pendingAcks = [];
    const encoded = chunkByStream(emits, this.opts.batchMaxRecords, this.opts.batchMaxBytes, this.opts.codec);
    // The chunks hold copies: the emits' memory goes back to the writer for the next emits, whatever the
    // transaction's outcome (a failed commit rejects its emits; their records are not read again).
    for (let i = 0; i < emits.length; i++) this.writer.release(emits[i]!.written.records);
    const demand = this.batchDemand;
    this.batchDemand = 0;
    let recorded = 0;
    this.checkDisk();
    const now = this.now();
    const codecId = COMPRESSION_ID[this.opts.codec.compression];
    let accepted = 0;
    const { ledger, bounds } = this;
    const started = performance.now();
    try {
      this.db.transaction(() => {
        for (const [name, { chunks }] of encoded) {
          const stream = ledger.stream(name);
          for (const chunk of chunks) accepted += bounds.admit(stream, chunk.count, now, codecId, chunk.payload, chunk.cborBytes);
        }
        const lastCursor = new Map<string, Cursor>();
        for (const e of emits) if (e.cursor) lastCursor.set(e.cursor.source, e.cursor.value);
        ledger.writeCursors(lastCursor);
        for (const ack of acks) ledger.removeBatch(ack.stream, ack.seq);
        if (this.opts.fullPolicy === 'drop_oldest') bounds.dropOldestUntilFits();
        if (demand > 0) recorded = this.planner.recordDemanded(demand, this.batchCap);
        ledger.persistDrops();
        ledger.rememberCursors(lastCursor);
      })();
    } catch (cause) {
      // The transaction rolled back; the database is the truth again. Acks are retried with the next commit.
      if (corruptionOf(cause) !== undefined) {
        // Damage found while running: never mark this file clean, so the next start checks, quarantines and
        // salvages it.
        this.damaged = true;
        this.opts.log.fatal({ err: (cause as Error).message }, 'queue file is damaged; restart the agent to quarantine and salvage it');
      }
      ledger.load();
      // The reload made new stream states: acks kept for the retry must point at them, or the retry deletes
      // the rows in the file while the in-memory view keeps the batch (and offers it again, empty).
      for (const ack of acks) {
        const stream = ledger.streams.get(ack.stream.name);
        if (stream) this.pendingAcks.push({ stream, seq: ack.seq });
      }
      if (isDiskFull(cause)) {
        bounds.diskFilled();
        // What only frees space must not wait for space: acknowledgements go on their own.
        this.commitAcks();
      }
      const err = new AgentError('QUEUE_WRITE_FAILED', `queue commit failed: ${(cause as Error).message}`, { cause, retryable: true });
      for (const e of emits) e.reject(err);
      this.opts.log.error({ err: err.message, records: emits.reduce((n, e) => n + e.written.records.count, 0) }, 'queue commit failed');
      return;
    }
    ledger.committed();
    for (const ack of acks) this.ackedKeys.delete(`${ack.stream.name}:${ack.seq}`);
    this.metrics.commitSeconds.observe(undefined, (performance.now() - started) / 1000);
    this.metrics.committedRecords.inc(undefined, accepted);
    this.metrics.commits.inc();
    for (const [stream, { repaired }] of encoded) if (repaired > 0) this.metrics.repairedRecords.inc({ stream }, repaired);
    for (const e of emits) e.resolve();
    if (accepted > 0 || recorded > 0) for (const listener of this.dataListeners) listener();
    if (acks.length > 0) this.wakeSpaceWaiters();
  }

  /**
   * Commits the waiting acknowledgements (and drop counters) alone, in a transaction that frees space; on a
   * full disk the space reserve is given up for it. Records waiting to be committed are not touched.
   */
  private commitAcks(): void {
    const acks = this.pendingAcks;
    if (acks.length === 0 && !this.ledger.hasUnwrittenDrops()) return;
    this.pendingAcks = [];
    try {
      this.space.write(() => {
        for (const ack of acks) this.ledger.removeBatch(this.ledger.stream(ack.stream.name), ack.seq);
        this.ledger.persistDrops();
      });
    } catch (cause) {
      for (const ack of acks) {
        const stream = this.ledger.streams.get(ack.stream.name);
        if (stream) this.pendingAcks.push({ stream, seq: ack.seq });
      }
      this.opts.log.error({ err: (cause as Error).message, acks: acks.length }, 'acknowledgements could not be committed; retried with the next commit');
      return;
    }
    for (const ack of acks) this.ackedKeys.delete(`${ack.stream.name}:${ack.seq}`);
    this.wakeSpaceWaiters();
  }

  /** Removes records older than max_age. */
  expire(): void {
    if (this.closed) return;
    // Acknowledged batches leave first: expiring them would count delivered records as dropped.
    if (this.pendingAcks.length > 0) this.commit();
    const now = this.now();
    try {
      this.space.write(() => {
        this.bounds.expire(now);
        this.ledger.persistDrops();
      });
    } catch (cause) {
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

  private syncWal(): void {
    if (this.closed) return;
    try {
      checkpointWal(this.db);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'periodic WAL sync failed; the next one retries');
    }
  }

  /**
   * `edge-agent queue purge` and `replay` change the file from another process (docs/operations.md, "Queue
   * tools"), in short transactions of their own: the in-memory view is rebuilt from the file before it is
   * next relied on. `data_version` moves only for other connections' commits, so this costs one statement step.
   */
  private reloadIfChangedElsewhere(): boolean {
    const version = this.dataVersionStatement.get()!;
    if (version === this.dataVersion) return false;
    this.dataVersion = version;
    try {
      // Counted but not yet written: the reload below would forget them.
      if (this.ledger.hasUnwrittenDrops()) this.ledger.persistDrops();
    } catch {
      // Written with the next commit's attempt, or lost with the reload: a count, never a record.
    }
    const acks = this.pendingAcks;
    this.ledger.load();
    this.pendingAcks = [];
    for (const ack of acks) {
      const stream = this.ledger.streams.get(ack.stream.name);
      if (stream) this.pendingAcks.push({ stream, seq: ack.seq });
    }
    this.opts.log.info({ records: this.ledger.totalRecords }, 'queue changed by another process (queue tools): view reloaded');
    return true;
  }

  /** Re-reads the free disk space now (also done every second and at every commit). */
  checkDisk(): void {
    if (this.closed) return;
    if (this.bounds.checkDisk()) this.wakeSpaceWaiters();
    // The reserve comes back once the disk has room again (it is the first thing a full disk takes).
    if (!this.bounds.disk.low) this.space.reserve.fill();
    this.fileWatch.check();
  }

  /** Calls `listener` for every drop once it is committed (counted in `stats().drops`). Returns an unsubscribe function. */
  onDropped(listener: (drop: { stream: string; reason: DropReason; records: number }) => void): () => void {
    this.ledger.dropListeners.add(listener);
    return () => this.ledger.dropListeners.delete(listener);
  }

  /** Calls `listener` whenever newly committed records may make a batch. Returns an unsubscribe function. */
  onData(listener: () => void): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }

  /**
   * The next batch to send, skipping those in `busy` (in flight). Higher-priority streams first; within a
   * stream, batches recorded earlier (not yet acknowledged, e.g. from before a crash) before new ones.
   * `allows`: the streams that may send now; `maxBytes`: stored bytes a stream's new batches may hold
   * together (what the governor can admit now; at least one chunk), both from the governor.
   */
  nextBatch(busy: ReadonlySet<string>, room = 1, allows?: (stream: string) => boolean, maxBytes?: (stream: string) => number): LeasedBatch | undefined {
    if (this.closed) return undefined;
    this.batchCap = maxBytes;
    this.reloadIfChangedElsewhere();
    // Batches the sender no longer holds (and did not acknowledge) were given up: a removed one is a drop.
    for (const key of this.ledger.leased.keys()) {
      if (!busy.has(key) && !this.ackedKeys.has(key)) this.settle(key, false);
    }
    if (this.ledger.hasUnwrittenDrops() && this.pending.length === 0) {
      try {
        this.space.write(() => this.ledger.persistDrops());
      } catch (err) {
        this.opts.log.error({ err: (err as Error).message }, 'drop counters could not be written; written with the next commit');
      }
    }
    let batch = this.pickBatch(busy, room, allows);
    // A queue tool committed while the batch was read (its chunks may be gone): read it again from the
    // reloaded view, so a batch never leaves with fewer records than its sequence stands for.
    for (let again = 0; batch && again < 3 && this.reloadIfChangedElsewhere(); again++) batch = this.pickBatch(busy, room, allows);
    if (batch) this.ledger.leased.set(batch.key, { stream: batch.stream, seq: batch.seq });
    return batch;
  }

  /** The batch is no longer in flight; `delivered` says whether the sink took it. */
  private settle(key: string, delivered: boolean): void {
    this.ledger.leased.delete(key);
    this.ledger.settleDeferred(key, delivered);
  }

  private pickBatch(busy: ReadonlySet<string>, room: number, allows: ((stream: string) => boolean) | undefined): LeasedBatch | undefined {
    // Again after a damaged batch was set aside: what was behind it goes now. Each turn removes a batch.
    for (;;) {
      const setAside = this.setAside;
      const batch = this.pickOnce(busy, room, allows);
      if (batch || this.setAside === setAside) return batch;
    }
  }

  private pickOnce(busy: ReadonlySet<string>, room: number, allows: ((stream: string) => boolean) | undefined): LeasedBatch | undefined {
    for (const stream of this.planner.byPriority()) {
      if (allows && !allows(stream.name)) continue; // held by the governor: its data waits
      for (const batch of stream.batches.values()) {
        const key = `${stream.name}:${batch.seq}`;
        if (busy.has(key) || this.ackedKeys.has(key)) continue;
        const leased = this.readOrSetAside(stream, batch);
        if (leased) return leased;
      }
      if (stream.records > stream.batchedRecords) {
        if (this.pending.length > 0) {
          // A commit is coming anyway (records wait for it): record the batches in that transaction rather
          // than in one of their own. At low ingest rates this halves the commits, and so the bytes written.
          this.batchDemand = Math.max(this.batchDemand, Math.max(1, room));
          return undefined;
        }
        const batch = this.space.recordBatch(this.planner, stream, Math.max(1, room), this.batchCap?.(stream.name));
        const leased = batch && this.readOrSetAside(stream, batch);
        if (leased) return leased;
      }
    }
    return undefined;
  }

  /**
   * The batch's body, or undefined when a chunk of it is damaged (queue/planner.ts, `materialise`): the batch is
   * then set aside, its records counted as dropped (`corrupt`) and the damage logged with the stream, batch and
   * chunk, and the next batch goes. Sending it would give the centre a body that is not what was written; not
   * sending it would stop every batch behind it. A multi-chunk batch loses its sound chunks with it: only small
   * chunks are merged, so at most batch.max_bytes of records.
   */
  private readOrSetAside(stream: StreamState, batch: BatchRow): LeasedBatch | undefined {
    try {
      return this.planner.materialise(stream, batch);
    } catch (err) {
      if (!isAgentError(err) || err.code !== 'QUEUE_CORRUPT') throw err;
      this.setAside++;
      this.space.write(() => {
        const removed = this.ledger.removeBatch(stream, batch.seq);
        this.ledger.countDrop(stream.name, 'corrupt', removed);
        this.ledger.persistDrops();
      });
      this.opts.log.error(
        { err: describeError(err), stream: stream.name, seq: batch.seq, records: batch.count },
        'damaged batch set aside; its records are lost',
      );
      this.wakeSpaceWaiters();
      return undefined;
    }
  }

  /** True while some record is neither acknowledged nor waiting for its acknowledgement to be committed. */
  hasUnsent(): boolean {
    for (const s of this.ledger.streams.values()) {
      if (s.records > s.batchedRecords) return true;
      for (const seq of s.batches.keys()) if (!this.ackedKeys.has(`${s.name}:${seq}`)) return true;
    }
    return false;
  }

  /** The sink acknowledged the batch: its rows go with the next commit (a lost ack only means a re-send). */
  ack(batch: LeasedBatch): void {
    const stream = this.ledger.streams.get(batch.stream);
    this.settle(batch.key, true);
    if (!stream || this.closed) return;
    this.ackedKeys.add(batch.key);
    this.pendingAcks.push({ stream, seq: batch.seq });
    this.scheduleCommit(this.opts.commitIntervalMs);
  }

  /** The sink refused the batch for good (poison): set it aside, counted as dropped. */
  reject(batch: LeasedBatch): void {
    const stream = this.ledger.streams.get(batch.stream);
    this.settle(batch.key, false);
    if (!stream || this.closed) return;
    this.space.write(() => {
      const removed = this.ledger.removeBatch(this.ledger.stream(batch.stream), batch.seq);
      this.ledger.countDrop(batch.stream, 'rejected', removed);
      this.ledger.persistDrops();
    });
    this.wakeSpaceWaiters();
  }

  stats(): QueueStats {
    const streams: QueueStats['streams'] = {};
    for (const s of this.ledger.streams.values()) streams[s.name] = { records: s.records, bytes: s.bytes, pendingBatches: s.batches.size, nextSeq: s.nextSeq };
    const { disk } = this.bounds;
    return {
      records: this.ledger.totalRecords,
      bytes: this.ledger.totalBytes,
      streams,
      drops: this.ledger.dropStats(),
      committed: this.metrics.committedRecords.value(),
      commits: this.metrics.commits.value(),
      disk: { free: disk.free, low: disk.low },
    };
  }

  /** Commits what waits, then closes the database. */
  /**
   * The queue file's connection, for the small tables other parts keep in the same file (remote control's
   * command states): one connection, so no second writer; statements on it run on this thread like ours.
   */
  get database(): Database.Database {
    return this.db;
  }

  close(): void {
    if (this.closed) return;
    clearTimeout(this.commitTimer);
    clearInterval(this.expiryTimer);
    clearInterval(this.diskTimer);
    clearInterval(this.syncTimer);
    // In flight at the stop and removed meanwhile: whether the sink took them is unknown now; they count.
    for (const key of [...this.ledger.leased.keys()]) this.settle(key, false);
    this.commit();
    this.commitAcks();
    this.fileWatch.rescueIfReplaced();
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
