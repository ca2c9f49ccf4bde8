import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { QueueOptions } from '../queue/queue.ts';

/** The queue's options from a validated config: the one place config keys meet queue options. */
export function queueOptions(config: Config, path: string, log: Logger): QueueOptions {
  return {
    path,
    synchronous: config.queue.synchronous,
    syncIntervalMs: config.queue.sync_interval,
    commitEveryRecords: config.queue.commit_every_records,
    commitIntervalMs: config.queue.commit_interval,
    maxBytes: config.queue.max_bytes,
    minFreeDisk: config.queue.min_free_disk,
    maxAgeMs: config.queue.max_age,
    fullPolicy: config.queue.full_policy,
    cacheBytes: config.queue.cache_size,
    batchMaxRecords: config.batch.max_records,
    batchMaxBytes: config.batch.max_bytes,
    codec: { compression: config.batch.compression, level: config.batch.level },
    priorities: Object.fromEntries(Object.entries(config.streams).map(([name, s]) => [name, s.priority])),
    streams: Object.fromEntries(Object.entries(config.streams).map(([name, s]) => [name, { maxBytes: s.max_bytes, maxAgeMs: s.max_age, drain: s.drain }])),
    log,
  };
}
