/**
 * The writes that must go through on a full disk: transactions that only free space or write a few pages
 * (acknowledgements, drops, recording a batch) and the batch sequence mark. Each is tried; when the disk is
 * full, the space reserve is released and it is tried once more. Kept apart from the facade so the rule
 * "what frees space never waits for space" has one owner.
 */
import type Database from 'better-sqlite3';
import { AgentError } from '../errors.ts';
import type { Bounds } from './bounds.ts';
import type { Ledger, StreamState } from './ledger.ts';
import type { BatchPlanner } from './planner.ts';
import { isDiskFull, type SpaceReserve } from './reserve.ts';
import type { SequenceMark } from './sequences.ts';

export class SpaceKeeper {
  private readonly db: Database.Database;
  private readonly ledger: Ledger;
  private readonly bounds: Bounds;
  readonly reserve: SpaceReserve;
  private readonly sequences: SequenceMark;
  private readonly pageSize: number;
  /**
   * `PRAGMA freelist_count`, prepared once: read at every commit's disk check, where `db.pragma()` prepared
   * and finalised a statement each time (≈5 % of the agent's CPU polling a SQLite table, in a profile).
   */
  private readonly freelistCount: Database.Statement<[], number>;

  constructor(db: Database.Database, ledger: Ledger, bounds: Bounds, reserve: SpaceReserve, sequences: SequenceMark) {
    this.db = db;
    this.ledger = ledger;
    this.bounds = bounds;
    this.reserve = reserve;
    this.sequences = sequences;
    this.pageSize = db.pragma('page_size', { simple: true }) as number;
    this.freelistCount = db.prepare<[], number>('PRAGMA freelist_count').pluck();
  }

  /** Runs a transaction that frees space or writes a few pages. The in-memory view follows the outcome. */
  write(body: () => void): void {
    for (let attempt = 0; ; attempt++) {
      try {
        this.db.transaction(body)();
        this.ledger.committed();
        return;
      } catch (cause) {
        this.ledger.load();
        if (isDiskFull(cause)) this.bounds.diskFilled();
        if (attempt > 0 || !isDiskFull(cause) || !this.reserve.release('a transaction that frees space')) throw cause;
      }
    }
  }

  /** Records the stream's next batches; a full disk gives up the reserve rather than stop the drain. */
  recordBatch(planner: BatchPlanner, stream: StreamState, room: number, capBytes?: number): ReturnType<BatchPlanner['record']> {
    try {
      return planner.record(stream, room, capBytes);
    } catch (cause) {
      this.ledger.load();
      if (!isDiskFull(cause)) throw cause;
      this.bounds.diskFilled();
      if (!this.reserve.release('recording a batch')) {
        // The reserve is spent: batches already recorded still go, and acks free pages; try again later.
        throw new AgentError('QUEUE_WRITE_FAILED', `cannot record the next batch of ${stream.name}: the disk is full`, { cause, retryable: true });
      }
      const reloaded = this.ledger.streams.get(stream.name);
      return reloaded ? planner.record(reloaded, room, capBytes) : undefined;
    }
  }

  /** With synchronous normal: reserves sequences in the mark before they are used (sequences.ts). */
  reserveSequences(stream: string, last: number): void {
    try {
      this.sequences.reserve(stream, last);
    } catch (cause) {
      if (!isDiskFull(cause) || !this.reserve.release('the batch sequence mark')) {
        throw new AgentError('QUEUE_WRITE_FAILED', `cannot write the batch sequence mark: ${(cause as Error).message}`, { cause, retryable: true });
      }
      this.sequences.reserve(stream, last);
    }
  }

  /** Bytes of the queue file's free pages: space the queue reuses before it takes any from the disk. */
  reusableBytes(): number {
    return this.freelistCount.get()! * this.pageSize;
  }
}
