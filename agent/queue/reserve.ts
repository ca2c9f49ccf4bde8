/**
 * The space reserve: a file of zeros next to the queue, written while the disk has room and deleted the
 * moment SQLite reports the disk full. What it frees is what lets the transactions that only shrink the
 * queue (acknowledgements, drops, recording a batch, the clean-state mark at open) commit on a full disk:
 * in WAL mode even a delete appends pages to the WAL, which may have to grow. Without it a full disk wedges
 * the queue: nothing can be acknowledged, so nothing leaves, and after a restart the queue cannot even open.
 */
import { closeSync, existsSync, fsyncSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import type { Logger } from '../log.ts';

/** Default size: room for the WAL to grow to its checkpoint size (1000 pages of 1 KiB) twice over. */
export const DEFAULT_RESERVE_BYTES = 2 * 1024 * 1024;

export class SpaceReserve {
  readonly path: string;
  private readonly bytes: number;
  private readonly log: Logger;

  constructor(queuePath: string, bytes: number, log: Logger) {
    this.path = `${queuePath}-reserve`;
    this.bytes = bytes;
    this.log = log;
  }

  /** True when the reserve is in place at its full size. */
  get present(): boolean {
    try {
      return statSync(this.path).size >= this.bytes;
    } catch {
      return false;
    }
  }

  /** Writes the reserve if it is missing (a full disk leaves it missing; it is tried again later). */
  fill(): boolean {
    if (this.bytes <= 0 || this.present) return false;
    const zeros = Buffer.alloc(Math.min(this.bytes, 256 * 1024));
    let fd: number | undefined;
    try {
      fd = openSync(this.path, 'w', 0o600);
      for (let done = 0; done < this.bytes; ) done += writeSync(fd, zeros, 0, Math.min(zeros.length, this.bytes - done));
      fsyncSync(fd);
      return true;
    } catch {
      // No room for it: a half-written reserve would only take space the queue needs now.
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
      rmSync(this.path, { force: true });
      return false;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Gives the reserve's space back to the file system; returns true when there was one to give. */
  release(why: string): boolean {
    if (!existsSync(this.path)) return false;
    try {
      rmSync(this.path, { force: true });
    } catch {
      return false;
    }
    this.log.warn({ reserve: this.path, bytes: this.bytes, why }, 'disk full: released the queue space reserve so acknowledgements and drops can commit');
    return true;
  }
}

/** True for the errors that mean the file system has no room left. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'SQLITE_IOERR_SHMSIZE';
}
