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
