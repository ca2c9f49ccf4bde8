/**
 * The byte budget of records emitted and not yet committed, shared by every source of the agent. Without it
 * each source keeps several emits of up to a thousand records in flight and nothing bounds their sum: 16
 * sources catching up at once ran a 32 MB heap out of memory. With it, a source's emit waits (its promise
 * does not resolve) while the source or the agent as a whole holds more than its share, so a source that
 * awaits its emits, or calls `room()` before making more records, stops producing instead of growing.
 * An emit is charged the bytes it holds while it waits: its records written as CBOR (`writtenBytes`; the
 * queue writes them when the emit is handed over), no longer an estimate of the records as objects.
 */
import { getHeapStatistics } from 'node:v8';

const KiB = 1024;
const MiB = 1024 * KiB;

/** What a budget allows: in total, per source, and per emit (what a source should put in one emit). */
export interface EmitBudgetLimits {
  totalBytes: number;
  perSourceBytes: number;
  perEmitBytes: number;
}

/**
 * Sized from the heap the process runs with: an eighth of it for records waiting to be committed (the queue
 * holds about as much again while it encodes them, and the sender its leased batches), at least 1 MiB, at
 * most 64 MiB. Each source may hold a quarter of that; one emit carries at most half a source's share, and
 * no more than its part when every source catches up at once.
 */
export function emitBudgetLimits(sources: number, heapLimit = getHeapStatistics().heap_size_limit): EmitBudgetLimits {
  const totalBytes = Math.max(1 * MiB, Math.min(64 * MiB, Math.floor(heapLimit / 8)));
  const perSourceBytes = Math.max(64 * KiB, Math.floor(totalBytes / 4));
  const perEmitBytes = Math.max(16 * KiB, Math.min(Math.floor(perSourceBytes / 2), Math.floor(totalBytes / (2 * Math.max(1, sources)))));
  return { totalBytes, perSourceBytes, perEmitBytes };
}

/**
 * What an emit charges: its records written as CBOR (the queue writes them when they are handed over, so
 * only these bytes wait for the commit; record-writer.ts), their end offsets, and a fixed cost for the rest.
 * The block holding them (emit-buffers.ts) is larger by at most 64 KiB, or up to twice for emits under
 * 64 KiB: charging the block's capacity instead was measured to cost a SQL source 3–8 % more CPU per record
 * (fewer of its emits in flight) for no change in memory at full speed (docs/benchmarks.md, "Full-speed
 * memory"), so the bytes written are charged.
 */
export function writtenBytes(written: { records: { bytes: Uint8Array; ends: Uint32Array } }): number {
  return 128 + written.records.bytes.byteLength + written.records.ends.byteLength;
}

/** One source's account in the budget. */
export class SourceAccount {
  /** Bytes of this source's emits handed to the queue and not yet committed. */
  admitted = 0;
  /** Bytes of this source's emits waiting for their turn (in memory, not yet handed to the queue). */
  waiting = 0;
  /** Emits are admitted in the order they were made (their cursors must commit in order). */
  private tickets = 0;
  private serving = 0;
  private readonly budget: EmitBudget;

  constructor(budget: EmitBudget) {
    this.budget = budget;
  }

  get perEmitBytes(): number {
    return this.budget.limits.perEmitBytes;
  }

  /**
   * Charges `bytes` and resolves once they may go to the queue: when this source's and the agent's admitted
   * bytes leave room for them. A source with nothing admitted may always go once the agent is below its
   * limit, so an emit larger than a share waits its turn but never forever. Only admitted bytes decide
   * (they are committed in time), so waiting emits cannot block each other.
   */
  async charge(bytes: number): Promise<void> {
    if (this.budget.waiters.length === 0 && this.mayAdmit(bytes)) {
      this.admit(bytes);
      return;
    }
    const ticket = this.tickets++;
    this.waiting += bytes;
    this.budget.waiting += bytes;
    await this.budget.waitUntil(
      () => ticket === this.serving && this.mayAdmit(bytes),
      () => {
        this.serving++;
        this.waiting -= bytes;
        this.budget.waiting -= bytes;
        this.admit(bytes);
      },
    );
  }

  /** Returns admitted bytes once their records are committed (or refused). */
  release(bytes: number): void {
    this.admitted -= bytes;
    this.budget.admitted -= bytes;
    this.budget.wake();
  }

  /**
   * Resolves when this source may make more records: what it holds (admitted and waiting) is below its share
   * and what the agent holds below the total.
   */
  room(): Promise<void> {
    const ready = () =>
      this.admitted + this.waiting < this.budget.limits.perSourceBytes && this.budget.admitted + this.budget.waiting < this.budget.limits.totalBytes;
    return ready() ? Promise.resolve() : this.budget.waitUntil(ready);
  }

  /** Resolves once nothing of this source is admitted or waiting: every record it emitted is committed (or refused). */
  idle(): Promise<void> {
    const ready = () => this.admitted === 0 && this.waiting === 0;
    return ready() ? Promise.resolve() : this.budget.waitUntil(ready);
  }

  private admit(bytes: number): void {
    this.admitted += bytes;
    this.budget.admitted += bytes;
  }

  private mayAdmit(bytes: number): boolean {
    const { perSourceBytes, totalBytes } = this.budget.limits;
    if (this.admitted === 0) return this.budget.admitted + bytes <= totalBytes || this.budget.admitted < totalBytes / 2;
    return this.admitted + bytes <= perSourceBytes && this.budget.admitted + bytes <= totalBytes;
  }
}

/** The agent-wide budget; sources get their account with `account()`. */
export class EmitBudget {
  readonly limits: EmitBudgetLimits;
  admitted = 0;
  waiting = 0;
  waiters: { ready: () => boolean; go: () => void; resolve: () => void }[] = [];
  private readonly onPressure: () => void;
  private pressureDue = false;

  /**
   * `onPressure` is called (at most once per turn of the event loop) when an emit or a source has to wait:
   * the agent commits what waits at once instead of at the next commit interval, since waiting for the timer
   * with the budget full would only slow every source down.
   */
  constructor(limits: EmitBudgetLimits, onPressure: () => void = () => {}) {
    this.limits = limits;
    this.onPressure = onPressure;
  }

  account(): SourceAccount {
    return new SourceAccount(this);
  }

  /** Resolves once `ready()` holds, after running `go` in the same step (so the next waiter sees its effect). */
  waitUntil(ready: () => boolean, go: () => void = () => {}): Promise<void> {
    if (!this.pressureDue) {
      this.pressureDue = true;
      setImmediate(() => {
        this.pressureDue = false;
        this.onPressure();
      });
    }
    return new Promise((resolve) => this.waiters.push({ ready, go, resolve }));
  }

  /** Wakes, in the order they came, the waiters whose condition now holds. */
  wake(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.ready()) {
        w.go();
        w.resolve();
      } else still.push(w);
    }
    this.waiters = still;
  }
}
