/**
 * The queue's numbers in the telemetry registry: what it holds (by stream), what it committed and how long
 * commits took, what it dropped and why, and the disk watermark. Depth and drops are read from the ledger at
 * collection time (the ledger and the queue file are their truth; drop counts survive restarts there); commit
 * counts and latencies are counted as commits happen.
 */
import type { Counter, Histogram, Telemetry } from '../telemetry/registry.ts';
import type { Ledger } from './ledger.ts';

export interface QueueMetrics {
  readonly committedRecords: Counter;
  readonly commits: Counter;
  readonly commitSeconds: Histogram;
  readonly repairedRecords: Counter;
  readonly fileReplaced: Counter;
}

/** Commit latency buckets, seconds: an SD card's fsync ranges from sub-millisecond to hundreds of ms. */
const COMMIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export function queueMetrics(telemetry: Telemetry, ledger: Ledger, disk: () => { free: number; low: boolean }): QueueMetrics {
  telemetry.gauge('edge_queue_records', 'Records held in the queue, by stream', ['stream'], (g) => {
    for (const s of ledger.streams.values()) g.set({ stream: s.name }, s.records);
  });
  telemetry.gauge('edge_queue_bytes', 'Bytes held in the queue (compressed, with per-chunk overhead), by stream', ['stream'], (g) => {
    for (const s of ledger.streams.values()) g.set({ stream: s.name }, s.bytes);
  });
  telemetry.gauge('edge_queue_unacknowledged_batches', 'Batches recorded and not yet acknowledged, by stream', ['stream'], (g) => {
    for (const s of ledger.streams.values()) g.set({ stream: s.name }, s.batches.size);
  });
  // Read at collection time, one indexed row per stream: the age of what has waited longest, delivered or not.
  telemetry.gauge(
    'edge_queue_oldest_record_age_seconds',
    'Age of the oldest record not yet delivered (since its commit), by stream; 0 when the stream holds none',
    ['stream'],
    (g) => {
      const now = Date.now();
      for (const s of ledger.streams.values()) {
        const oldest = ledger.oldestCommitted(s);
        g.set({ stream: s.name }, oldest === undefined ? 0 : Math.max(0, now - oldest) / 1000);
      }
    },
  );
  telemetry.counter(
    'edge_queue_dropped_records_total',
    'Records dropped, by stream and reason (kept in the queue file across restarts)',
    ['stream', 'reason'],
    (total) => {
      for (const [stream, byReason] of Object.entries(ledger.dropStats())) {
        for (const [reason, records] of Object.entries(byReason)) total({ stream, reason }, records ?? 0);
      }
    },
  );
  telemetry.gauge('edge_queue_disk_free_bytes', 'Free space on the queue file system at the last check', [], (g) => g.set(undefined, disk().free));
  telemetry.gauge('edge_queue_disk_low', '1 while free space is below queue.min_free_disk (the queue does not grow)', [], (g) =>
    g.set(undefined, disk().low ? 1 : 0),
  );
  return {
    committedRecords: telemetry.counter('edge_queue_committed_records_total', 'Records committed to the queue (with their source cursors)'),
    commits: telemetry.counter('edge_queue_commits_total', 'Queue transactions committed (group commits)'),
    repairedRecords: telemetry.counter(
      'edge_queue_repaired_records_total',
      'Records kept after repairing text that was not well-formed UTF-16 (each lone surrogate became U+FFFD), by stream',
      ['stream'],
    ),
    fileReplaced: telemetry.counter(
      'edge_queue_file_replaced_total',
      'Times the queue file was found deleted or replaced under the running agent (its records then go to a rescue file)',
    ),
    commitSeconds: telemetry.histogram('edge_queue_commit_seconds', 'Time a queue commit took, encoding excluded', [], COMMIT_BUCKETS),
  };
}
