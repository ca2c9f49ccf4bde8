import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Queue, type QueueOptions } from '../../agent/queue/queue.ts';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import { silentLogger } from '../../agent/log.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'edge-queue-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function options(over: Partial<QueueOptions> = {}): QueueOptions {
  return {
    path: join(dir, 'q.db'),
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
    ...over,
  };
}

const recs = (from: number, count: number): AgentRecord[] =>
  Array.from({ length: count }, (_, i) => ({ n: from + i, ts: 1_700_000_000_000 + from + i, v: (from + i) * 0.5 }));
const bodyRecords = (b: { body: Uint8Array; compression: 'deflate' | 'none' | 'brotli' | 'zstd' }) => decodeRecords(decompress(b.body, b.compression, 1 << 26));

describe('queue', () => {
  test('records and the source cursor commit together and survive reopening', async () => {
    const q = Queue.open(options());
    await q.enqueue('s', recs(1, 10), { source: 'src', value: 10 });
    q.close();
    const again = Queue.open(options());
    assert.equal(again.cursor('src'), 10);
    assert.equal(again.stats().records, 10);
    const batch = again.nextBatch(new Set())!;
    assert.deepEqual(
      bodyRecords(batch).map((r) => r.n),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    again.close();
  });

  test('a batch recorded before publishing is re-sent after a reopen with the same sequence and bytes', async () => {
    const q = Queue.open(options());
    await q.enqueue('s', recs(1, 250));
    const first = q.nextBatch(new Set())!;
    q.close(); // crash-like: no ack
    const again = Queue.open(options());
    const resent = again.nextBatch(new Set())!;
    assert.equal(resent.seq, first.seq);
    assert.equal(resent.count, first.count);
    assert.equal(resent.created, first.created);
    assert.deepEqual(Buffer.from(resent.body), Buffer.from(first.body));
    again.close();
  });

  test('the queue epoch is made once and kept across reopenings; a new queue file gets a new one', async () => {
    const q = Queue.open(options());
    const epoch = Buffer.from(q.epoch);
    assert.equal(epoch.length, 8);
    q.close();
    const again = Queue.open(options());
    assert.deepEqual(Buffer.from(again.epoch), epoch);
    again.close();
    const other = Queue.open(options({ path: join(dir, 'other.db') }));
    assert.notDeepEqual(Buffer.from(other.epoch), epoch);
    other.close();
  });

  test('rows leave only on ack; an ack survives only once committed', async () => {
    const q = Queue.open(options({ batchMaxRecords: 50 }));
    await q.enqueue('s', recs(1, 100));
    const a = q.nextBatch(new Set())!;
    const b = q.nextBatch(new Set([a.key]))!;
    assert.deepEqual([a.seq, b.seq], [1, 2]);
    q.ack(a);
    await q.flush();
    assert.equal(q.stats().records, 50);
    assert.equal(q.nextBatch(new Set([b.key]))?.seq, undefined, 'an acked batch is never handed out again');
    q.close();
    const again = Queue.open(options({ batchMaxRecords: 50 }));
    assert.equal(again.stats().records, 50);
    assert.equal(again.nextBatch(new Set())!.seq, 2);
    again.close();
  });

  test('chunk ids and batch sequences are never reused after the queue drains', async () => {
    const q = Queue.open(options());
    await q.enqueue('s', recs(1, 5));
    const a = q.nextBatch(new Set())!;
    q.ack(a);
    await q.flush();
    assert.equal(q.stats().records, 0);
    q.close();
    const idsBefore = new Database(join(dir, 'q.db')).prepare("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").pluck().get() as number;
    const again = Queue.open(options());
    await again.enqueue('s', recs(6, 5));
    const b = again.nextBatch(new Set())!;
    assert.equal(b.seq, a.seq + 1);
    again.close();
    const db = new Database(join(dir, 'q.db'));
    const ids = db.prepare('SELECT id FROM chunks').pluck().all() as number[];
    db.close();
    assert.ok(
      ids.every((id) => id > idsBefore),
      `new chunk ids ${ids} must be above ${idsBefore}`,
    );
  });

  test('group commit: many small emits share one commit', async () => {
    const q = Queue.open(options({ commitEveryRecords: 100, commitIntervalMs: 10_000 }));
    const emits = Array.from({ length: 10 }, (_, i) => q.enqueue('s', recs(i * 10 + 1, 10)));
    await Promise.all(emits);
    assert.equal(q.stats().commits, 1);
    assert.equal(q.stats().committed, 100);
    q.close();
  });

  test('drop_oldest keeps the newest data within max_bytes and counts every dropped record', async () => {
    const q = Queue.open(options({ maxBytes: 4_000, batchMaxRecords: 10, codec: { compression: 'none', level: undefined } }));
    for (let i = 0; i < 20; i++) await q.enqueue('s', recs(i * 10 + 1, 10));
    const stats = q.stats();
    assert.ok(stats.bytes <= 4_000, `bytes ${stats.bytes}`);
    const dropped = stats.drops.s?.queue_full ?? 0;
    assert.equal(dropped + stats.records, 200, 'kept + dropped = accepted');
    assert.ok(dropped > 0);
    const batch = q.nextBatch(new Set())!;
    assert.equal(bodyRecords(batch)[0]!.n, dropped + 1, 'the oldest records went first');
    q.close();
    const again = Queue.open(options({ maxBytes: 4_000 }));
    assert.equal(again.stats().drops.s?.queue_full, dropped, 'drop counters are persistent');
    again.close();
  });

  test('drop_newest refuses new data once full and counts it', async () => {
    const q = Queue.open(options({ maxBytes: 4_000, fullPolicy: 'drop_newest', batchMaxRecords: 10, codec: { compression: 'none', level: undefined } }));
    for (let i = 0; i < 20; i++) await q.enqueue('s', recs(i * 10 + 1, 10), { source: 'src', value: i });
    const stats = q.stats();
    assert.equal(stats.records + (stats.drops.s?.queue_full ?? 0), 200);
    assert.equal(bodyRecords(q.nextBatch(new Set())!)[0]!.n, 1, 'the oldest records stay');
    assert.equal(q.cursor('src'), 19, 'the cursor moves on: dropping is the policy, not a failure');
    q.close();
  });

  test('block makes sources wait until an ack frees space', async () => {
    const q = Queue.open(options({ maxBytes: 2_000, fullPolicy: 'block', batchMaxRecords: 10, codec: { compression: 'none', level: undefined } }));
    while (q.stats().bytes < 2_000) await q.enqueue('s', recs(1, 10));
    let released = false;
    const blocked = q.enqueue('s', recs(999, 10)).then(() => (released = true));
    await q.flush();
    assert.equal(released, false, 'must wait while full');
    let batch: ReturnType<typeof q.nextBatch>;
    while (!released && (batch = q.nextBatch(new Set()))) {
      q.ack(batch);
      await q.flush();
      await Promise.resolve();
    }
    await blocked;
    assert.equal(q.stats().drops.s, undefined, 'block never drops');
    q.close();
  });

  test('records older than max_age expire and are counted', async () => {
    let now = 1_000_000;
    const q = Queue.open(options({ maxAgeMs: 60_000, now: () => now }));
    await q.enqueue('s', recs(1, 10));
    now += 30_000;
    await q.enqueue('s', recs(11, 10));
    now += 40_000; // the first commit is now 70 s old, the second 40 s
    q.expire();
    assert.equal(q.stats().records, 10);
    assert.equal(q.stats().drops.s?.expired, 10);
    q.close();
  });

  test('higher-priority streams leave first', async () => {
    const q = Queue.open(options({ priorities: { alarms: 90, telemetry: 10 } }));
    await q.enqueue('telemetry', recs(1, 10));
    await q.enqueue('alarms', recs(100, 1));
    assert.equal(q.nextBatch(new Set())!.stream, 'alarms');
    q.close();
  });

  test('small chunks are merged into one batch up to max_records', async () => {
    const q = Queue.open(options({ batchMaxRecords: 25, commitEveryRecords: 1 }));
    for (let i = 0; i < 6; i++) await q.enqueue('s', recs(i * 10 + 1, 10));
    const batch = q.nextBatch(new Set())!;
    assert.equal(batch.count, 20, 'two chunks of 10 fit in 25, a third does not');
    assert.deepEqual(
      bodyRecords(batch).map((r) => r.n),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    q.close();
  });

  test('a chunk of 1/64 of max_bytes or more is a batch of its own, sent as stored (not decoded and encoded again)', async () => {
    // 64 × 64 B: chunks of 64 stored bytes or more are not merged. Noisy text keeps each chunk above that.
    const q = Queue.open(options({ batchMaxRecords: 1000, batchMaxBytes: 64 * 64, commitEveryRecords: 1 }));
    const noisy = (from: number) => Array.from({ length: 20 }, (_, i) => ({ n: from + i, note: Math.random().toString(36).repeat(2) }));
    await q.enqueue('s', noisy(1));
    await q.enqueue('s', noisy(21));
    const first = q.nextBatch(new Set())!;
    assert.equal(first.count, 20, 'the second chunk is not merged into the first');
    assert.deepEqual(
      bodyRecords(first).map((r) => r.n),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.equal(q.nextBatch(new Set())!.count, 20);
    q.close();
  });

  test('a value that is not a record, or a record that cannot be encoded, is dropped and counted without losing the others', async () => {
    const q = Queue.open(options({ commitEveryRecords: 10_000, commitIntervalMs: 20 }));
    await q.enqueue('s', [42 as unknown as AgentRecord, { n: 0 }]);
    const good = q.enqueue('s', recs(1, 3));
    const bad = q.enqueue('s', [{ n: 4, f: () => 1 } as AgentRecord]);
    const good2 = q.enqueue('s', recs(5, 2));
    await Promise.all([good, bad, good2]);
    assert.deepEqual(
      bodyRecords(q.nextBatch(new Set())!).map((r) => r.n),
      [0, 1, 2, 3, 5, 6],
    );
    assert.equal(q.stats().drops.s?.invalid, 2);
    q.close();
  });

  test('ts is stamped on records that lack one', async () => {
    const q = Queue.open(options({ now: () => 1234 }));
    await q.enqueue('s', [{ a: 1 }, { a: 2, ts: 7 }]);
    assert.deepEqual(bodyRecords(q.nextBatch(new Set())!), [
      { a: 1, ts: 1234 },
      { a: 2, ts: 7 },
    ]);
    q.close();
  });
});
