import Database from 'better-sqlite3';
import { parseConfig } from '../../agent/app.ts';
import type { LoadedConfig } from '../../agent/config/load.ts';
import type { Logger } from '../../agent/log.ts';
import type { QueueOptions } from '../../agent/queue/queue.ts';
import { queueOptions as runtimeQueueOptions } from '../../agent/runtime/queue-options.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';

/** The queue options startAgent builds from `loaded` (the runtime's own function, so they cannot drift). */
export function queueOptions(loaded: LoadedConfig, path: string, log: Logger): QueueOptions {
  return runtimeQueueOptions(loaded.config, path, log);
}

/** The settings that shape the figures, as the worker actually ran them. */
export function describeSettings(loaded: LoadedConfig, source: Record<string, unknown>) {
  const { config } = loaded;
  return {
    synchronous: config.queue.synchronous,
    commitEveryRecords: config.queue.commit_every_records,
    commitIntervalMs: config.queue.commit_interval,
    cacheBytes: config.queue.cache_size,
    batchMaxRecords: config.batch.max_records,
    batchMaxBytes: config.batch.max_bytes,
    compression: config.batch.compression,
    level: config.batch.level ?? null,
    maxInFlight: config.sender.max_in_flight,
    source,
  };
}

export function parseBenchConfig(yaml: string, baseDir: string): LoadedConfig {
  return parseConfig(yaml, 'bench', baseDir);
}

export function sqliteVersion(): string {
  const db = new Database(':memory:');
  try {
    return (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  } finally {
    db.close();
  }
}

/** JSON bytes of records seen, sampled cheaply (one record per emit) so sampling does not load the measured run. */
export class JsonSizeSampler {
  private bytes = 0;
  private samples = 0;

  sample(records: readonly AgentRecord[]): void {
    const r = records[records.length >> 1];
    if (r === undefined) return;
    this.bytes += Buffer.byteLength(JSON.stringify(r));
    this.samples++;
  }

  get mean(): number {
    return this.samples === 0 ? 0 : this.bytes / this.samples;
  }
}
