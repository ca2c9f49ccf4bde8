import type { AgentRecord, Cursor } from '../../../agent/sdk/index.ts';

export interface GroupSettings {
  batchRecords: number;
  flushMs: number;
  maxPending: number;
  /** Bytes (as `add` counts them) of the group being gathered and the emits in flight, together. */
  maxPendingBytes: number;
}

export interface GroupTarget {
  emit(records: AgentRecord[], cursor: Cursor): Promise<void>;
  /** Called with true when maxPending emits or maxPendingBytes are in flight, false when there is room again. */
  backpressure(full: boolean): void;
  failed(err: unknown): void;
}

/**
 * Gathers framed records into small groups (batchRecords, or whatever arrived within flushMs) and keeps
 * several emits in flight: each emit waits for a group commit, so awaiting them one by one would cap a fast
 * line at one group per commit interval. Bounded in bytes too: a group is cut at its share of maxPendingBytes,
 * and the line is paused while gathered and in-flight records hold maxPendingBytes (a paused port still delivers
 * what its stream had buffered, so the bound is passed by at most that and one frame).
 */
export class RecordGroups {
  private group: AgentRecord[] = [];
  private groupBytes = 0;
  /** Bytes of the group being gathered and of every emit not yet settled. */
  private heldBytes = 0;
  private readonly emitBytes = new Map<Promise<void>, number>();
  private cursor: Cursor = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly pending = new Set<Promise<void>>();
  private full = false;
  private hasFailed = false;
  private readonly settings: GroupSettings;
  private readonly target: GroupTarget;

  constructor(settings: GroupSettings, target: GroupTarget) {
    this.settings = settings;
    this.target = target;
  }

  /** `bytes`: what the record holds in memory, roughly (the serial source counts its frame and a fixed cost). */
  add(record: AgentRecord, cursor: Cursor, bytes: number): void {
    if (this.hasFailed) return;
    this.group.push(record);
    this.groupBytes += bytes;
    this.heldBytes += bytes;
    this.cursor = cursor;
    const groupShare = this.settings.maxPendingBytes / this.settings.maxPending;
    if (this.group.length >= this.settings.batchRecords || this.groupBytes >= groupShare) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.settings.flushMs);
    this.checkFull();
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.group.length === 0 || this.hasFailed) return;
    const records = this.group;
    const bytes = this.groupBytes;
    this.group = [];
    this.groupBytes = 0;
    const emitted = this.target.emit(records, this.cursor);
    this.pending.add(emitted);
    this.emitBytes.set(emitted, bytes);
    emitted.then(
      () => this.settled(emitted),
      (err) => {
        this.settled(emitted);
        if (this.hasFailed) return;
        // Later groups may commit after this one failed, so stop here and let the runtime restart the source.
        this.hasFailed = true;
        this.target.failed(err);
      },
    );
    this.checkFull();
  }

  private isFull(): boolean {
    return this.pending.size >= this.settings.maxPending || this.heldBytes >= this.settings.maxPendingBytes;
  }

  private checkFull(): void {
    if (!this.full && this.isFull()) {
      this.full = true;
      this.target.backpressure(true);
    }
  }

  private settled(emitted: Promise<void>): void {
    this.pending.delete(emitted);
    this.heldBytes -= this.emitBytes.get(emitted) ?? 0;
    this.emitBytes.delete(emitted);
    if (this.full && !this.isFull()) {
      this.full = false;
      this.target.backpressure(false);
    }
  }

  /** Emits what is gathered and waits until every emit has settled. */
  async drain(): Promise<void> {
    this.flush();
    await Promise.allSettled([...this.pending]);
  }
}
