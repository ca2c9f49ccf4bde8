import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type LeasedBatch, type QueueOptions } from '../../agent/queue/queue.ts';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import { silentLogger } from '../../agent/log.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'edge-streams-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function options(over: Partial<QueueOptions> = {}): QueueOptions {
  return {
    path: join(dir, 'q.db'),
    synchronous: 'normal',
    commitEveryRecords: 10,
    commitIntervalMs: 5,
    maxBytes: 1 << 30,
    maxAgeMs: 86_400_000,
    fullPolicy: 'drop_oldest',
    cacheBytes: 1 << 20,
    batchMaxRecords: 10,
    batchMaxBytes: 1 << 20,
    codec: { compression: 'none', level: undefined },
    priorities: {},
    log: silentLogger,
    ...over,
  };
}
const recs = (from: number, n: number): AgentRecord[] => Array.from({ length: n }, (_, i) => ({ n: from + i, pad: 'x'.repeat(50) }));
const numbers = (b: LeasedBatch) => decodeRecords(decompress(b.body, b.compression, 1 << 26)).map((r) => r.n as number);

describe('per-stream bounds and drain order', () => {
  test('a stream over its own max_bytes loses its oldest records; other streams are untouched', async () => {
    const q = Queue.open(options({ streams: { chatty: { maxBytes: 2_000 } } }));
    for (let i = 0; i < 20; i++) await q.enqueue('chatty', recs(i * 10 + 1, 10));
    for (let i = 0; i < 5; i++) await q.enqueue('quiet', recs(i * 10 + 1, 10));
    const s = q.stats();
    assert.ok(s.streams.chatty!.bytes <= 2_000, `chatty holds ${s.streams.chatty!.bytes} bytes`);
    assert.equal(s.streams.chatty!.records + (s.drops.chatty?.queue_full ?? 0), 200);
    assert.equal(s.streams.quiet!.records, 50, 'the other stream keeps everything');
    assert.equal(s.drops.quiet, undefined);
    q.close();
  });

  test("a stream's own max_age expires it sooner than the queue-wide one", async () => {
    let now = 1_000_000;
    const q = Queue.open(options({ now: () => now, streams: { fresh: { maxAgeMs: 10_000 } } }));
    await q.enqueue('fresh', recs(1, 10));
    await q.enqueue('keep', recs(1, 10));
    now += 20_000;
    q.expire();
    const s = q.stats();
    assert.equal(s.drops.fresh?.expired, 10);
    assert.equal(s.streams.keep!.records, 10);
    q.close();
  });

  test("drop_newest honours a stream's own bound too", async () => {
    const q = Queue.open(options({ fullPolicy: 'drop_newest', streams: { s: { maxBytes: 2_000 } } }));
    for (let i = 0; i < 20; i++) await q.enqueue('s', recs(i * 10 + 1, 10));
    const s = q.stats();
    assert.equal(s.streams.s!.records + (s.drops.s?.queue_full ?? 0), 200);
    assert.deepEqual(numbers(q.nextBatch(new Set())!).slice(0, 3), [1, 2, 3], 'the oldest stay');
    q.close();
  });

  test('live_first: with a backlog waiting, the newest records leave first, then the backlog drains in order', async () => {
    const q = Queue.open(options({ streams: { s: { drain: 'live_first' } } }));
    for (let i = 0; i < 5; i++) await q.enqueue('s', recs(i * 10 + 1, 10)); // backlog: 1..50
    const busy = new Set<string>();
    const first = q.nextBatch(busy)!;
    busy.add(first.key);
    assert.deepEqual(numbers(first), [41, 42, 43, 44, 45, 46, 47, 48, 49, 50], 'the newest chunk first');
    await q.enqueue('s', recs(51, 10)); // new live data arrives while the backlog waits
    const second = q.nextBatch(busy)!;
    busy.add(second.key);
    assert.deepEqual(numbers(second)[0], 51, 'new data overtakes the backlog');
    const rest: number[] = [];
    for (let b = q.nextBatch(busy); b; b = q.nextBatch(busy)) {
      busy.add(b.key);
      rest.push(...numbers(b));
    }
    assert.deepEqual(
      rest,
      Array.from({ length: 40 }, (_, i) => i + 1),
      'then the backlog, oldest first',
    );
    assert.ok(second.seq > first.seq, 'sequences still increase in the order batches are made');
    q.close();
  });

  test('live_first batches survive a reopen: unacked ones are re-sent as they were, gaps are filled later', async () => {
    const q = Queue.open(options({ streams: { s: { drain: 'live_first' } } }));
    for (let i = 0; i < 3; i++) await q.enqueue('s', recs(i * 10 + 1, 10));
    const newest = q.nextBatch(new Set())!;
    q.close();
    const again = Queue.open(options({ streams: { s: { drain: 'live_first' } } }));
    const busy = new Set<string>();
    const resent = again.nextBatch(busy)!;
    busy.add(resent.key);
    assert.equal(resent.seq, newest.seq);
    assert.deepEqual(numbers(resent), numbers(newest));
    const all: number[] = [...numbers(resent)];
    for (let b = again.nextBatch(busy); b; b = again.nextBatch(busy)) {
      busy.add(b.key);
      all.push(...numbers(b));
    }
    assert.deepEqual(
      [...all].sort((a, b) => a - b),
      Array.from({ length: 30 }, (_, i) => i + 1),
      'every record once',
    );
    again.close();
  });
});
