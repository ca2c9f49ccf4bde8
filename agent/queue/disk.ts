import { statfsSync } from 'node:fs';

/**
 * Watches the free space of the file system that holds the queue. Below `minFree` the disk counts as low
 * until free space is back above `minFree` plus a margin (so the state does not flap on every commit).
 *
 * Free space here includes `reusable`: the queue file's own free pages (its freelist). The file never
 * shrinks, so a queue that once grew into the watermark and drained would otherwise see the disk low for
 * good, although every page it needs is already its own.
 */
export class DiskWatermark {
  private readonly dir: string;
  private readonly minFree: number;
  private readonly statfs: (dir: string) => number;
  private readonly reusable: () => number;
  low = false;
  /** Free bytes at the last check: the file system's, plus the queue file's reusable pages. */
  free = Number.POSITIVE_INFINITY;

  constructor(dir: string, minFree: number, reusable: () => number = () => 0, statfs: (dir: string) => number = freeBytes) {
    this.dir = dir;
    this.minFree = minFree;
    this.reusable = reusable;
    this.statfs = statfs;
  }

  /** Re-reads free space; returns true when the low/ok state changed. */
  check(): boolean {
    if (this.minFree <= 0 && !this.low) return false;
    try {
      this.free = this.statfs(this.dir) + this.reusable();
    } catch {
      return false; // cannot tell: keep the last state
    }
    const wasLow = this.low;
    // Leave the low state only with a margin above the mark (16 MiB when there is no mark and SQLite itself
    // reported the disk full), so the state does not flap on every commit.
    const margin = Math.max(this.minFree / 10, 1024 * 1024);
    if (!this.low && this.free < this.minFree) this.low = true;
    else if (this.low && this.free >= (this.minFree > 0 ? this.minFree + margin : 16 * 1024 * 1024)) this.low = false;
    return wasLow !== this.low;
  }

  /** SQLite ran out of space before the watermark saw it coming. */
  markLow(): void {
    this.low = true;
  }
}

function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}
