/**
 * Records are written as CBOR when they are handed to the queue (record-writer.ts), so only bytes wait for
 * the commit; a commit cuts them into chunks that each take as many records as batch.max_bytes allows, every
 * record encoded once.
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
import type { AgentRecord } from '../../agent/domain/record.ts';

function sentRecords(queue: Queue): AgentRecord[] {
  const sent: AgentRecord[] = [];
  for (let batch = queue.nextBatch(new Set()); batch; batch = queue.nextBatch(new Set())) {
    queue.ack(batch);
    for (const r of decodeRecords(decompress(batch.body, batch.compression, 1 << 20))) sent.push(r);
  }
  return sent;
}

test('the queue keeps what a record was when it was handed over, not the object: a change after enqueue is not committed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-handover-'));
  try {
    const queue = Queue.open(testQueueOptions(join(dir, 'q.db'), { commitEveryRecords: 1000, commitIntervalMs: 50 }));
    const record: AgentRecord = { n: 1, ts: 5, text: 'before' };
    const committed = queue.enqueue('s', [record], { source: 'src', value: 1 });
    // The source's object is its own again at once (it may reuse it): nothing of it waits for the commit.
    record.text = 'after';
    record.n = 2;
    await committed;
    assert.deepEqual(sentRecords(queue), [{ n: 1, ts: 5, text: 'before' }]);
    queue.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a commit cuts its records into chunks filled up to batch.max_bytes, in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-fill-chunks-'));
  try {
    const path = join(dir, 'q.db');
    const queue = Queue.open(testQueueOptions(path, { batchMaxBytes: 1000, batchMaxRecords: 1000 }));
    // 100 records of ≈110 B of CBOR, in emits of 7 that do not line up with the chunks: nine fit in 1000 B.
    // Cutting by count then halving (as before) gave chunks of 6 or 7.
    const records = Array.from({ length: 100 }, (_, n) => ({ n, ts: 1767225600000 + n, text: 'x'.repeat(80) }));
    const emits: Promise<void>[] = [];
    for (let i = 0; i < records.length; i += 7) emits.push(queue.enqueue('s', records.slice(i, i + 7), { source: 'src', value: i }));
    await Promise.all(emits);
    queue.close();
    const db = new Database(path, { readonly: true });
    const chunks = db.prepare('SELECT count, cbor_bytes AS cbor FROM chunks ORDER BY id').all() as { count: number; cbor: number }[];
    db.close();
    assert.deepEqual(
      chunks.map((c) => c.count),
      [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 1],
    );
    for (const c of chunks) assert.ok(c.cbor <= 1000, `${c.cbor} bytes of CBOR`);
    const again = Queue.open(testQueueOptions(path, { batchMaxBytes: 1000, batchMaxRecords: 1000 }));
    assert.deepEqual(sentRecords(again), records);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
