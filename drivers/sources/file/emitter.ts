import { type AgentRecord, COMMIT_NOW, type Cursor, type SourceContext } from '../../../agent/sdk/index.ts';

export interface EmitterSettings {
  batchRecords: number;
  maxPending: number;
  maxPendingBytes: number;
}

/**
 * Gathers records into groups and keeps several emits in flight (each waits for a group commit), bounded by
 * count (maxPending) and bytes (maxPendingBytes, the group being gathered included). The cursor of an emit is
 * taken when it is handed over, so it covers exactly the lines handled up to then.
 */
export class Emitter {
  private records: AgentRecord[] = [];
  private groupBytes = 0;
  private heldBytes = 0;
  private readonly inFlight = new Map<Promise<void>, number>();
  private failure: unknown;
  private readonly ctx: SourceContext;
  private readonly settings: EmitterSettings;
  private readonly onFailed: (err: unknown) => void;

  constructor(ctx: SourceContext, settings: EmitterSettings, onFailed: (err: unknown) => void) {
    this.ctx = ctx;
    this.settings = settings;
    this.onFailed = onFailed;
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Adds a record; returns true when the group should be handed over now (by count or its share of bytes). */
  add(record: AgentRecord, bytes: number): boolean {
    this.records.push(record);
    this.groupBytes += bytes;
    this.heldBytes += bytes;
    const share = Math.min(this.settings.maxPendingBytes / this.settings.maxPending, this.ctx.maxEmitBytes ?? Number.POSITIVE_INFINITY);
    return this.records.length >= this.settings.batchRecords || this.groupBytes >= share;
  }

  get gathered(): number {
    return this.records.length;
  }

  /** Hands the group (possibly empty: the cursor alone) to the queue with `cursor`. */
  flush(cursor: Cursor): void {
    if (this.failure !== undefined) return;
    const records = this.records;
    const bytes = this.groupBytes;
    this.records = [];
    this.groupBytes = 0;
    // The emit that fills the window is one `room` waits on: it is committed at once, not after
    // queue.commit_interval (a window of fewer records than commit_every_records would wait that long).
    const fillsWindow = this.inFlight.size + 1 >= this.settings.maxPending || this.heldBytes >= this.settings.maxPendingBytes;
    const emitted = this.ctx.emit(records, cursor, fillsWindow ? COMMIT_NOW : undefined);
    this.inFlight.set(emitted, bytes);
    emitted.then(
      () => this.settle(emitted),
      (err) => {
        this.settle(emitted);
        if (this.failure !== undefined) return;
        // A later emit may commit after this one failed: nothing more goes out, the runtime restarts the source.
        this.failure = err ?? new Error('emit failed');
        this.onFailed(err);
      },
    );
  }

  private settle(emitted: Promise<void>): void {
    this.heldBytes -= this.inFlight.get(emitted) ?? 0;
    this.inFlight.delete(emitted);
  }

  private full(): boolean {
    return this.inFlight.size >= this.settings.maxPending || this.heldBytes >= this.settings.maxPendingBytes;
  }

  /** Resolves when another read may start: few enough emits and bytes in flight, and the agent's memory share has room. */
  async room(): Promise<void> {
    while (this.full() && this.failure === undefined && this.inFlight.size > 0) {
      await Promise.race([...this.inFlight.keys()]).catch(() => {});
    }
    await this.ctx.room?.();
  }

  /** Waits until every emit has settled. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight.keys()]);
  }
}
