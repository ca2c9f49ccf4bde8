/**
 * The SDK: everything a driver may import from the core. Drivers never reach into other core modules, so
 * the core can change behind this surface.
 */
import type { z } from 'zod';
import type { Logger } from '../log.ts';

export { z } from 'zod';
export { duration, size } from '../config/units.ts';
export { AgentError, isAgentError, describeError } from '../errors.ts';
export type { ErrorCode } from '../errors.ts';
export { backoffDelay, delay } from '../runtime/backoff.ts';
export type { BackoffPolicy } from '../runtime/backoff.ts';
export type { Logger } from '../log.ts';
/**
 * Opens a SQLite file with better-sqlite3 the way this runtime loads its native addon (inside the single
 * executable it is unpacked from the executable): drivers use this, never `new Database()` themselves.
 */
export { openDatabase as openSqlite } from '../queue/sqlite.ts';

/** One record: a plain object of CBOR-encodable values. The queue stamps `ts` (ms since epoch) if absent. */
export type AgentRecord = { [field: string]: unknown };

/** Where a source is in its input (a DB high-water mark, a byte offset…); committed with its records. */
export type Cursor = string | number | boolean | null | Cursor[] | { [key: string]: Cursor };

/** Per-instance counters a driver reports (bad frames, reconnects…); surfaced in status and logs. */
export interface Counters {
  add(name: string, n?: number): void;
}

export interface SourceContext {
  readonly name: string;
  readonly log: Logger;
  /** The cursor committed with this source's last records, or undefined on first start. */
  readonly cursor: Cursor | undefined;
  /** Aborted when the source must stop. */
  readonly signal: AbortSignal;
  readonly counters: Counters;
  /**
   * Hands records to the queue. Resolves once they and `cursor` are committed in one transaction: only then
   * may a source acknowledge upstream. Under the `block` queue policy it waits for space.
   *
   * Commits are grouped (queue.commit_every_records or queue.commit_interval, whichever comes first), so a
   * source that awaits each emit before producing the next gets at most one emit per commit interval.
   * A fast source keeps several emits in flight (they commit in order) and awaits them for backpressure.
   *
   * The records are handed over: the queue stamps and normalises them in place (large integers become
   * BigInt for encoding), so a source must not read or reuse them after the call.
   */
  emit(records: AgentRecord[], cursor?: Cursor): Promise<void>;
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

export interface DriverEnv {
  readonly log: Logger;
  /** Absolute directory that relative paths in this driver's config are resolved against. */
  readonly baseDir: string;
}

/**
 * A source driver. `options` is the driver's own config, declared once: its types, validation, defaults and
 * the reference docs all come from it. The runtime adds the common fields (name, stream, interval,
 * on_start_error) around it.
 */
export interface SourceDriver<O extends z.ZodObject = z.ZodObject> {
  readonly type: string;
  readonly summary: string;
  readonly mode: 'polled' | 'service';
  readonly options: O;
  create(config: z.output<O> & CommonSourceConfig, env: DriverEnv): Source;
}

export interface CommonSourceConfig {
  type: string;
  name: string;
  stream: string;
  interval: number;
  on_start_error: 'fail' | 'retry' | 'ignore';
}

/** A batch ready for the wire: `bytes` is the complete sealed envelope. */
export interface OutgoingBatch {
  readonly device: string;
  readonly stream: string;
  /**
   * The queue epoch (hex) the sequence belongs to: (device, stream, epoch, seq) names a batch for good. A
   * re-send carries the same four; a replaced queue starts a new epoch (docs/wire-format.md).
   */
  readonly epoch: string;
  readonly seq: number;
  readonly count: number;
  readonly bytes: Uint8Array;
}

/**
 * A sink. `write` resolves only when the broker has acknowledged the batch; it rejects with an AgentError
 * whose `retryable` flag tells the runtime whether to try again (connection lost, timeout) or to set the
 * batch aside (the broker refused it). The runtime owns retries, pacing and the in-flight window.
 */
export interface Sink {
  /** Starts connecting; resolves once the first connection attempt has been made (it may have failed). */
  connect(): Promise<void>;
  readonly connected: boolean;
  /** Resolves when connected, or when the signal aborts. */
  waitConnected(signal: AbortSignal): Promise<void>;
  write(batch: OutgoingBatch): Promise<void>;
  close(): Promise<void>;
}

/** A message taken from the broker on the centre side; resolving the handler acknowledges it. */
export interface IncomingMessage {
  readonly bytes: Uint8Array;
  /** Where it came from (topic), for logs. */
  readonly origin: string;
}

export interface Consumer {
  start(handler: (message: IncomingMessage) => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

/** A sink driver, and the matching consumer the receiver uses to read what the sink wrote. */
export interface SinkDriver<O extends z.ZodObject = z.ZodObject> {
  readonly type: string;
  readonly summary: string;
  readonly options: O;
  /**
   * Effectful checks that belong to `check-config` but not to pure validation (an optional native module
   * that is not installed, say). Throws an AgentError with a message that says what to do instead.
   */
  preflight?(config: z.output<O>): Promise<void>;
  create(config: z.output<O>, env: DriverEnv & { device: string }): Sink;
  createConsumer(config: z.output<O>, env: DriverEnv & { clientName: string }): Consumer;
}
