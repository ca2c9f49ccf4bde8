import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { testQueueOptions } from '../helpers/queue-options.ts';
import { Queue } from '../../agent/queue/queue.ts';
import { Telemetry } from '../../agent/telemetry/registry.ts';

test('an acknowledgement whose commit failed is applied by the next commit, and the view stays true', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-failed-commit-'));
  const path = join(dir, 'q.db');
  const telemetry = new Telemetry();
  const q = Queue.open(testQueueOptions(path, { commitIntervalMs: 60_000, batchMaxRecords: 10, codec: { compression: 'none', level: undefined }, telemetry }));
  try {
    const accepted = q.enqueue(
      's',
      Array.from({ length: 10 }, (_, i) => ({ i })),
    );
    await q.flush();
    await accepted;
    const batch = q.nextBatch(new Set());
    assert.ok(batch);
    assert.equal(batch.count, 10);
    // Another connection makes the next delete of chunks fail, as a full disk or an I/O error would.
    const other = new Database(path);
    other.exec("CREATE TRIGGER fail_delete BEFORE DELETE ON chunks BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    q.ack(batch);
    await q.flush();
    assert.equal(q.stats().records, 10, 'the failed commit deleted nothing');
    other.exec('DROP TRIGGER fail_delete');
    other.close();
    await q.flush();
    const stats = q.stats();
    assert.equal(stats.records, 0);
    assert.equal(stats.streams.s?.records, 0, 'the stream agrees with the total');
    assert.equal(stats.streams.s?.pendingBatches, 0);
    assert.equal(q.nextBatch(new Set()), undefined, 'the acknowledged batch is not offered again');
    assert.equal(q.hasUnsent(), false);
    assert.deepEqual(
      telemetry.collect().find((m) => m.name === 'edge_queue_records')?.samples,
      [{ labels: { stream: 's' }, value: 0 }],
      'the registry reads the same view',
    );
  } finally {
    q.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
