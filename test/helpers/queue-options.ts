import { silentLogger } from '../../agent/log.ts';
import type { QueueOptions } from '../../agent/queue/queue.ts';

/** Queue options for a test: small, fast commits, full sync; `overrides` for what the test is about. */
export function testQueueOptions(path: string, overrides: Partial<QueueOptions> = {}): QueueOptions {
  return {
    path,
    synchronous: 'full',
    commitEveryRecords: 1000,
    commitIntervalMs: 5,
    maxBytes: 64 * 1024 * 1024,
    maxAgeMs: 30 * 86_400_000,
    fullPolicy: 'drop_oldest',
    cacheBytes: 1 << 20,
    batchMaxRecords: 100,
    batchMaxBytes: 1 << 20,
    codec: { compression: 'deflate', level: 1 },
    priorities: {},
    log: silentLogger,
    ...overrides,
  };
}
