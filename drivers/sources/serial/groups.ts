import type { AgentRecord, Cursor } from '../../../agent/sdk/index.ts';

export interface GroupSettings {
  batchRecords: number;
  flushMs: number;
  maxPending: number;
}

export interface GroupTarget {
  emit(records: AgentRecord[], cursor: Cursor): Promise<void>;
  /** Called with true when maxPending emits are in flight, false when one more may start. */
  backpressure(full: boolean): void;
  failed(err: unknown): void;
}

/**
 * Gathers framed records into small groups (batchRecords, or whatever arrived within flushMs) and keeps
 * several emits in flight: each emit waits for a group commit, so awaiting them one by one would cap a fast
 * line at one group per commit interval.
 */
export class RecordGroups {
  private group: AgentRecord[] = [];
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

  add(record: AgentRecord, cursor: Cursor): void {
    if (this.hasFailed) return;
    this.group.push(record);
    this.cursor = cursor;
    if (this.group.length >= this.settings.batchRecords) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.settings.flushMs);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.group.length === 0 || this.hasFailed) return;
    const records = this.group;
    this.group = [];
    const emitted = this.target.emit(records, this.cursor);
    this.pending.add(emitted);
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
    if (!this.full && this.pending.size >= this.settings.maxPending) {
      this.full = true;
      this.target.backpressure(true);
    }
  }

  private settled(emitted: Promise<void>): void {
    this.pending.delete(emitted);
    if (this.full && this.pending.size < this.settings.maxPending) {
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
