/**
 * A record no batch could carry (its CBOR alone over batch.max_bytes) is dropped at ingest, counted as
 * too_large, and never sent: the centre would refuse such a batch, and the gateway would delete it as sent.
 * The records beside it, and the source's cursor, go on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import { Queue } from '../../agent/queue/queue.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';

test('a record over batch.max_bytes is dropped at ingest as too_large; the others and the cursor are kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-too-large-'));
  try {
    const queue = Queue.open(testQueueOptions(join(dir, 'q.db'), { batchMaxBytes: 1000 }));
    await queue.enqueue('s', [{ n: 1 }, { n: 2, blob: 'x'.repeat(2000) }, { n: 3, text: 'y'.repeat(900) }], { source: 'src', value: 7 });
    const stats = queue.stats();
    assert.equal(stats.records, 2);
    assert.equal(stats.drops.s?.too_large, 1);
    assert.equal(queue.cursor('src'), 7);
    const sent: number[] = [];
    for (let batch = queue.nextBatch(new Set()); batch; batch = queue.nextBatch(new Set())) {
      queue.ack(batch);
      for (const r of decodeRecords(decompress(batch.body, batch.compression, 1 << 20))) sent.push(r.n as number);
    }
    assert.deepEqual(sent, [1, 3]);
    queue.close();
    // Counted durably, like every drop.
    const again = Queue.open(testQueueOptions(join(dir, 'q.db'), { batchMaxBytes: 1000 }));
    assert.equal(again.stats().drops.s?.too_large, 1);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('small chunks are merged into batches of at most batch.max_bytes of CBOR, not of compressed bytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-merge-bytes-'));
  try {
    const queue = Queue.open(testQueueOptions(join(dir, 'q.db'), { batchMaxBytes: 16 * 1024 }));
    // One small commit each: chunks of ≈950 CBOR bytes that deflate to a few dozen, far below the stored size
    // from which chunks stop being merged (256 B here). Counted by compressed size, all 40 made one batch of
    // 38 KB of CBOR, over the limit the centre's max_batch_bytes enforces.
    for (let i = 0; i < 40; i++) await queue.enqueue('s', [{ n: i, text: 'a'.repeat(900) }], undefined);
    const sent: number[] = [];
    let batches = 0;
    for (let batch = queue.nextBatch(new Set()); batch; batch = queue.nextBatch(new Set())) {
      const cbor = decompress(batch.body, batch.compression, 1 << 20);
      assert.ok(cbor.length <= 16 * 1024, `batch ${batch.seq}: ${cbor.length} bytes of CBOR`);
      for (const r of decodeRecords(cbor)) sent.push(r.n as number);
      queue.ack(batch);
      batches++;
    }
    assert.deepEqual(
      sent,
      Array.from({ length: 40 }, (_, i) => i),
    );
    assert.equal(batches, 3, 'as few batches as the limit allows (17 records each)');
    queue.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a queue file written by a build without the CBOR sizes opens, and its chunks go out one per batch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-merge-old-'));
  const file = join(dir, 'q.db');
  try {
    const queue = Queue.open(testQueueOptions(file, { batchMaxBytes: 16 * 1024 }));
    for (let i = 0; i < 5; i++) await queue.enqueue('s', [{ n: i }], undefined);
    queue.close();
    const db = new Database(file);
    db.exec('ALTER TABLE chunks DROP COLUMN cbor_bytes');
    db.close();
    const again = Queue.open(testQueueOptions(file, { batchMaxBytes: 16 * 1024 }));
    await again.enqueue('s', [{ n: 5 }], undefined);
    const batches: number[][] = [];
    for (let batch = again.nextBatch(new Set()); batch; batch = again.nextBatch(new Set())) {
      batches.push(decodeRecords(decompress(batch.body, batch.compression, 1 << 20)).map((r) => r.n as number));
      again.ack(batch);
    }
    assert.deepEqual(batches, [[0], [1], [2], [3], [4], [5]]);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
