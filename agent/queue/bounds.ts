/**
 * The queue's bounds: max_bytes (queue-wide and per stream), the full policies that keep them
 * (drop_newest when a chunk comes in, drop_oldest after a commit, block before an enqueue), max_age, and the
 * cap that holds the queue at its size while the disk is low. Separate from the ledger because these are
 * policy over its totals: the ledger says what is held, this says what may be held.
 */
import { DiskWatermark } from './disk.ts';
import type { Ledger, StreamState } from './ledger.ts';
import { CHUNK_OVERHEAD } from './storage.ts';
import type { DropReason, QueueOptions } from './types.ts';

export class Bounds {
  private readonly ledger: Ledger;
  private readonly opts: QueueOptions;
  readonly disk: DiskWatermark;
  /** While the disk is low: the queue may not hold more than it held when space ran low. */
  private diskCap = Number.POSITIVE_INFINITY;

  /** `reusable`: bytes of the queue file's free pages, which the queue can fill without the disk. */
  constructor(ledger: Ledger, opts: QueueOptions, dir: string, reusable: () => number = () => 0) {
    this.ledger = ledger;
    this.opts = opts;
    this.disk = new DiskWatermark(dir, opts.minFreeDisk ?? 0, reusable);
  }

  /** The byte bound in force: max_bytes, or while the disk is low what the queue held when it ran low. */
  private limit(): number {
    return Math.min(this.opts.maxBytes, this.diskCap);
  }

  private fullReason(): DropReason {
    return this.diskCap < this.opts.maxBytes && this.ledger.totalBytes >= this.diskCap ? 'disk_full' : 'queue_full';
  }

  /** For `block`: true while the queue, or the stream named, may not grow. */
  full(stream: string): boolean {
    const target = this.ledger.streams.get(stream);
    return this.ledger.totalBytes >= this.limit() || (target !== undefined && target.bytes >= target.maxBytes);
  }

  /**
   * Stores a freshly encoded chunk (inside the commit's transaction) unless drop_newest refuses it for want
   * of room; returns the records kept.
   */
  admit(stream: StreamState, count: number, created: number, codecId: number, payload: Uint8Array, cborBytes: number): number {
    if (this.opts.fullPolicy === 'drop_newest') {
      const size = payload.length + CHUNK_OVERHEAD;
      const overStream = stream.bytes + size > stream.maxBytes;
      if (this.ledger.totalBytes + size > this.limit() || overStream) {
        this.ledger.countDrop(stream.name, overStream ? 'queue_full' : this.fullReason(), count);
        return 0;
      }
    }
    this.ledger.addChunk(stream, count, created, codecId, payload, cborBytes);
    return count;
  }

  /** drop_oldest: lowest priority first, oldest first within a stream. */
  dropOldestUntilFits(): void {
    const ledger = this.ledger;
    for (const stream of ledger.streams.values()) {
      while (stream.bytes > stream.maxBytes && ledger.removeOldest(stream, 'queue_full') > 0);
    }
    const reason = this.fullReason();
    while (ledger.totalBytes > this.limit()) {
      const victim = [...ledger.streams.values()].filter((s) => s.records > 0).sort((a, b) => a.priority - b.priority || a.id - b.id)[0];
      if (!victim || ledger.removeOldest(victim, reason) === 0) break;
    }
  }

  /** Removes records older than their stream's max_age (inside a transaction). */
  expire(now: number): void {
    for (const stream of this.ledger.streams.values()) {
      const cutoff = now - stream.maxAgeMs;
      while (stream.records > 0 && this.ledger.removeOldest(stream, 'expired', cutoff) > 0);
    }
  }

  /** Re-reads the free disk space; returns true when space came back (writers held back may retry). */
  checkDisk(): boolean {
    if (!this.disk.check()) return false;
    if (this.disk.low) {
      this.enterDiskLow();
      return false;
    }
    this.leaveDiskLow();
    return true;
  }

  /** SQLite reported a full disk: the watermark was too low or something else filled the disk. */
  diskFilled(): void {
    if (!this.disk.low) {
      this.disk.markLow();
      this.enterDiskLow();
    }
  }

  private enterDiskLow(): void {
    this.diskCap = this.ledger.totalBytes;
    this.opts.log.error(
      { free: this.disk.free, minFree: this.opts.minFreeDisk, heldBytes: this.ledger.totalBytes, policy: this.opts.fullPolicy },
      'disk space low: the queue stops growing and applies its full policy',
    );
  }

  private leaveDiskLow(): void {
    this.diskCap = Number.POSITIVE_INFINITY;
    this.opts.log.warn({ free: this.disk.free }, 'disk space is back: the queue may grow again');
  }
}
