import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { Queue, type QueueOptions } from '../../agent/queue/queue.ts';
import { type Counter, Telemetry } from '../../agent/telemetry/registry.ts';
import { pino } from 'pino';
import { silentLogger, type Logger } from '../../agent/log.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';

function options(dir: string, over: Partial<QueueOptions> = {}): QueueOptions {
  return {
    path: join(dir, 'queue.db'),
    synchronous: 'full',
    commitEveryRecords: 1_000_000,
    commitIntervalMs: 1_000_000,
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
// Incompressible, so sizes are predictable.
const recs = (n: number): AgentRecord[] => Array.from({ length: n }, () => ({ blob: randomBytes(200) }));

/** A real logger whose lines are kept (the queue's own messages are what is checked). */
function recordingLogger(): { log: Logger; lines: { level: number; obj: Record<string, unknown>; msg: string }[] } {
  const lines: { level: number; obj: Record<string, unknown>; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(toLine(JSON.parse(line) as Record<string, unknown>)) });
  return { log, lines };
}
const toLine = (entry: Record<string, unknown>) => ({ level: entry.level as number, obj: entry, msg: String(entry.msg) });

test('drop_oldest: an in-flight batch it removes counts as dropped only if the sender does not deliver it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-queue-acct-'));
  try {
    const q = Queue.open(options(dir, { maxBytes: 2 * 10 * 260 }));
    await Promise.all([q.enqueue('s', recs(10)), q.enqueue('s', recs(10)), q.flush()]);
    const delivered = q.nextBatch(new Set())!; // first 10 records, in flight
    const busy = new Set([delivered.key]);
    const abandoned = q.nextBatch(busy)!; // next 10, in flight too
    busy.add(abandoned.key);
    assert.equal(q.stats().records, 20);
    await Promise.all([q.enqueue('s', recs(20)), q.flush()]);
    // Over max_bytes: drop_oldest removed the two oldest batches (both in flight) to take the new records.
    assert.equal(q.stats().records, 20, 'the two in-flight batches were removed');
    assert.equal(q.stats().streams.s?.pendingBatches, 0);
    assert.deepEqual(q.stats().drops, {}, 'not counted while their fate is open');
    q.ack(delivered); // the sink took it after all: delivered, not dropped
    busy.delete(delivered.key);
    busy.delete(abandoned.key); // the sender gave this one up (e.g. it timed out and was never acked)
    q.nextBatch(busy);
    await q.flush();
    assert.deepEqual(q.stats().drops, { s: { queue_full: 10 } }, 'exactly the undelivered batch counts');
    q.close();
    const again = Queue.open(options(dir));
    assert.deepEqual(again.stats().drops, { s: { queue_full: 10 } }, 'and that is what the file holds');
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('drops of a transaction that rolls back are neither counted nor logged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-queue-acct-'));
  try {
    const { log, lines } = recordingLogger();
    const q = Queue.open(options(dir, { maxBytes: 10 * 260, log }));
    await Promise.all([q.enqueue('s', recs(10)), q.flush()]);
    // Another connection holds the write lock: the next commit (which drops the oldest) fails and rolls back.
    const other = new Database(join(dir, 'queue.db'));
    other.pragma('busy_timeout = 0');
    other.exec('BEGIN IMMEDIATE');
    const failed = q.enqueue('s', recs(10)).then(
      () => 'committed',
      () => 'refused',
    );
    await q.flush();
    assert.equal(await failed, 'refused');
    assert.deepEqual(q.stats().drops, {}, 'the rolled-back drop is not counted');
    assert.equal(lines.filter((l) => l.msg === 'records dropped').length, 0, 'nor logged');
    other.exec('ROLLBACK');
    other.close();
    await Promise.all([q.enqueue('s', recs(10)), q.flush()]);
    assert.deepEqual(q.stats().drops, { s: { queue_full: 10 } });
    assert.deepEqual(
      lines.filter((l) => l.msg === 'records dropped').map((l) => l.obj.records),
      [10],
      'the committed drop is logged once',
    );
    q.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a queue file deleted or replaced under the running queue is detected, reported and its records rescued', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-queue-acct-'));
  try {
    const telemetry = new Telemetry();
    const { log, lines } = recordingLogger();
    const q = Queue.open(options(dir, { log, telemetry }));
    await Promise.all([q.enqueue('s', recs(30)), q.flush()]);
    rmSync(join(dir, 'queue.db')); // an operator's cleanup
    q.checkDisk(); // done every second by the queue itself
    const report = lines.find((l) => l.level >= 50 && /deleted or replaced/.test(l.msg));
    assert.ok(report, 'reported in the log');
    const rescuedAs = report.obj.rescuedAs as string;
    assert.match(rescuedAs, /queue\.db\.rescued-/);
    assert.equal((telemetry.get('edge_queue_file_replaced_total') as Counter).value(), 1, 'and counted');
    await Promise.all([q.enqueue('s', recs(20)), q.flush()]); // keeps running
    q.close(); // the rescue is refreshed with what came after
    assert.ok(existsSync(rescuedAs), readdirSync(dir).join(', '));
    const db = new Database(rescuedAs, { readonly: true });
    assert.equal(db.prepare('SELECT sum(count) FROM chunks').pluck().get(), 50, 'every record is in the rescue file');
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
