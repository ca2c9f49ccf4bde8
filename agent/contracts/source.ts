/** The source contract: polled (`gather` on an interval) or service (`start`/`stop`, pushes records). */
import type { z } from '../util/zod.ts';
import type { AgentRecord, Cursor, RecordRows } from '../domain/record.ts';
import type { Logger } from '../log.ts';
import type { Counters } from '../telemetry/counters.ts';
import type { ProblemReporter } from '../telemetry/problems.ts';
import type { DriverEnv, DriverInfo } from './driver.ts';

/** How an emit wants to be committed. */
export interface EmitOptions {
  /**
   * Commit within this many ms rather than after `queue.commit_interval`: for a source whose peer waits for
   * the acknowledgement before it sends more (HL7 over MLLP, an HTTP request), where waiting only adds
   * latency. Emits of several peers arriving within the bound still share one commit.
   */
  readonly commitWithinMs?: number;
  /**
   * The stream the records go to instead of the source's own: an ingest endpoint with a route per stream
   * (the http source).
   */
  readonly stream?: string;
}

/**
 * The options of the emit that fills a source's window of emits in flight, the one it waits on next: committed
 * at once, since waiting out queue.commit_interval would bound catching up by the clock (see `emit`).
 */
export const COMMIT_NOW: EmitOptions = Object.freeze({ commitWithinMs: 0 });

export interface SourceContext {
  readonly name: string;
  readonly log: Logger;
  /** The cursor committed with this source's last records, or undefined on first start. */
  readonly cursor: Cursor | undefined;
  /** Aborted when the source must stop. */
  readonly signal: AbortSignal;
  readonly counters: Counters;
  readonly problems: ProblemReporter;
  /**
   * Hands records to the queue. Resolves once they and `cursor` are committed in one transaction: only then
   * may a source acknowledge upstream. Under the `block` queue policy it waits for space.
   *
   * Commits are grouped (queue.commit_every_records or queue.commit_interval, whichever comes first), so a
   * source that awaits each emit before producing the next gets at most one emit per commit interval.
   * A fast source keeps several emits in flight (they commit in order) and awaits them for backpressure;
   * the emit that fills its window, the one it will wait on, asks `commitWithinMs: 0`, or a window of fewer
   * records than commit_every_records waits out the interval every time. A source being stopped commits at once.
   *
   * The records are handed over: the queue stamps and normalises them in place (large integers become
   * BigInt for encoding), so a source must not read or reuse them after the call.
   */
  emit(records: AgentRecord[], cursor?: Cursor, options?: EmitOptions): Promise<void>;
  /**
   * `emit` for rows that share their keys (a SQL result read as arrays): the queue writes the same bytes as
   * for the records they stand for (`asRecords`), without making an object per row. Optional so a test may
   * hand a bare context: a source calls `emit(asRecords(rows), …)` when it is missing.
   */
  emitRows?(rows: RecordRows, cursor?: Cursor, options?: EmitOptions): Promise<void>;
  /**
   * True while the queue would not take new records for `stream` (default: the source's own) at once: full
   * under `block` (an emit would wait) or `drop_newest` (it would be dropped). A source that answers a sender
   * (an HTTP request) can refuse now instead. Optional so a test may hand a bare context.
   */
  queueRefuses?(stream?: string): boolean;
  /**
   * Memory is bounded in bytes: the agent holds at most a share of its heap in records emitted and not yet
   * committed, per source and in total. An emit beyond that waits before it reaches the queue. A source
   * calls `room()` before reading or making its next records (it resolves when its share has room), and
   * puts at most `maxEmitBytes` (as records take in memory) in one emit where it can choose. Optional so a
   * test may hand a bare context; the agent always provides both.
   */
  room?(): Promise<void>;
  readonly maxEmitBytes?: number;
  /**
   * A running service source reports that it cannot go on (its device vanished, an emit failed). The
   * runtime stops it and starts it again with backoff, from the last committed cursor.
   */
  fail(err: unknown): void;
}

/** Polled: the runtime calls `gather` on the configured interval. */
export interface PolledSource {
  gather(ctx: SourceContext): Promise<void>;
  close?(): Promise<void>;
}

/** Service: started once, pushes records until stopped. `start` resolves when it runs (or throws if it cannot). */
export interface ServiceSource {
  start(ctx: SourceContext): Promise<void>;
  stop(): Promise<void>;
}

export type Source = PolledSource | ServiceSource;

/** Fields the runtime adds around every source driver's own options. */
export interface CommonSourceConfig {
  type: string;
  name: string;
  stream: string;
  interval: number;
  on_start_error: 'fail' | 'retry' | 'ignore';
}

export interface SourceDriver<O extends z.ZodObject = z.ZodObject> extends DriverInfo<O> {
  readonly mode: 'polled' | 'service';
  /**
   * Makes an instance. Asynchronous so that a driver loads its implementation (its class and the libraries
   * it needs) with `import()` here, when a config uses it, rather than at every start: a driver's index.ts is
   * its declaration only. A rejection is a start error of the source (its `on_start_error` decides).
   */
  create(config: z.output<O> & CommonSourceConfig, env: DriverEnv): Promise<Source>;
}
