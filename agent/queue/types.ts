/**
 * The queue's public types. They sit in a module of their own, below every other queue module, so storage,
 * the ledger and the planner can name the options and drop reasons without importing the facade (which
 * imports them): the dependency order stays one-way. `queue.ts` re-exports them for the rest of the agent.
 */
import type { Logger } from '../log.ts';
import type { Telemetry } from '../telemetry/registry.ts';
import type { CodecSettings, Compression } from '../envelope/codec.ts';

export type FullPolicy = 'drop_oldest' | 'drop_newest' | 'block';
export type DrainOrder = 'oldest_first' | 'live_first';

export interface StreamOptions {
  maxBytes?: number;
  maxAgeMs?: number;
  /**
   * oldest_first: a backlog leaves in the order it was taken. live_first: while a backlog waits, the newest
   * records leave first and the backlog drains whenever nothing new is waiting.
   */
  drain?: DrainOrder;
}
/** too_large: one record whose CBOR alone exceeds batch.max_bytes, so no batch could carry it. */
export type DropReason = 'queue_full' | 'disk_full' | 'expired' | 'rejected' | 'corrupt' | 'invalid' | 'too_large';

export interface QueueOptions {
  path: string;
  synchronous: 'full' | 'normal';
  /** Commit as soon as this many records wait… */
  commitEveryRecords: number;
  /** …or when the oldest waiting record has waited this long. */
  commitIntervalMs: number;
  maxBytes: number;
  /** SQLite page size of a new queue file (default 1024). */
  pageSize?: number;
  /** With synchronous `normal`: how often the WAL is synced at the latest (a passive checkpoint). */
  syncIntervalMs?: number;
  /** Below this much free space on the queue's file system the queue stops growing (0: no watermark). */
  minFreeDisk?: number;
  maxAgeMs: number;
  /**
   * Bytes of the space reserve kept beside the queue file (`<path>-reserve`), released when the disk is full
   * so acknowledgements and drops still commit (default 2 MiB; 0: none).
   */
  reserveBytes?: number;
  fullPolicy: FullPolicy;
  cacheBytes: number;
  batchMaxRecords: number;
  batchMaxBytes: number;
  codec: CodecSettings;
  priorities: Readonly<Record<string, number>>;
  /** Per-stream bounds and drain order (streams not named use the queue-wide bounds, oldest first). */
  streams?: Readonly<Record<string, StreamOptions>>;
  log: Logger;
  /** The registry the queue reports into (one of its own when absent: a queue opened by a tool or a test). */
  telemetry?: Telemetry;
  now?: () => number;
}

/** A batch taken from the queue for sending: recorded (sequence → chunk range) before it is handed out. */
export interface LeasedBatch {
  readonly stream: string;
  readonly seq: number;
  readonly count: number;
  readonly created: number;
  /** When the batch's oldest record was committed (ms since the epoch): end-to-end latency is measured from it. */
  readonly oldest?: number;
  readonly compression: Compression;
  /** Compressed CBOR array of the records, ready to be sealed. */
  readonly body: Uint8Array;
  /** Identity of the batch inside this queue (stream and sequence). */
  readonly key: string;
}

export interface QueueStats {
  records: number;
  bytes: number;
  streams: Record<string, { records: number; bytes: number; pendingBatches: number; nextSeq: number }>;
  drops: Record<string, Partial<Record<DropReason, number>>>;
  committed: number;
  commits: number;
  disk: { free: number; low: boolean };
}
