import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Queue, type QueueOptions } from '../../agent/queue/queue.ts';
import { silentLogger } from '../../agent/log.ts';
import { isAgentError, type AgentRecord } from '../../agent/sdk/index.ts';

// A real, small tmpfs: the queue really runs out of space. Mounting needs root; CI runs as root.
let mnt = '';
let reason: string | undefined;
before(() => {
  mnt = mkdtempSync(join(tmpdir(), 'edge-diskfull-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { stdio: 'pipe' });
  } catch (err) {
    reason = `cannot mount a tmpfs (needs root): ${(err as Error).message.split('\n')[0]}`;
    if (process.env.CI) throw new Error(`${reason}; CI must run the disk-full tests`);
    process.stdout.write(`# skipping disk-full tests: ${reason}\n`);
  }
});
after(() => {
  if (!reason) execFileSync('umount', [mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

const resize = (size: string) => execFileSync('mount', ['-o', `remount,size=${size}`, mnt]);
const free = () => {
  const s = statfsSync(mnt);
  return s.bavail * s.bsize;
};
// Incompressible payloads, so the file really grows by what is queued.
const recs = (n: number): AgentRecord[] => Array.from({ length: n }, () => ({ blob: randomBytes(100) }));

function options(name: string, over: Partial<QueueOptions>): QueueOptions {
  return {
    path: join(mnt, name, 'queue.db'),
    synchronous: 'full',
    commitEveryRecords: 100,
    commitIntervalMs: 5,
    maxBytes: 1 << 30,
    maxAgeMs: 86_400_000,
    fullPolicy: 'drop_oldest',
    cacheBytes: 1 << 20,
    batchMaxRecords: 100,
    batchMaxBytes: 1 << 20,
    codec: { compression: 'none', level: undefined },
    priorities: {},
    log: silentLogger,
    ...over,
  };
}

describe('disk full (real tmpfs)', () => {
  test('below the watermark the queue stops growing, drops the oldest exactly as counted, and recovers when space returns', async (t) => {
    if (reason) return t.skip(reason);
    resize('8m');
    const q = Queue.open(options('a', { minFreeDisk: 3 * 1024 * 1024 }));
    let accepted = 0;
    for (let i = 0; i < 600 && !q.stats().disk.low; i++) {
      await q.enqueue('s', recs(100));
      accepted += 100;
    }
    assert.equal(q.stats().disk.low, true, 'the watermark was reached');
    const heldAtLow = q.stats().bytes;
    for (let i = 0; i < 100; i++) {
      await q.enqueue('s', recs(100)); // keeps working: never throws
      accepted += 100;
    }
    const s = q.stats();
    assert.ok(s.bytes <= heldAtLow, `the queue did not grow (${s.bytes} ≤ ${heldAtLow})`);
    assert.ok((s.drops.s?.disk_full ?? 0) > 0, 'drops are counted as disk_full');
    assert.equal(s.records + (s.drops.s?.disk_full ?? 0), accepted, 'every record is either kept or counted as dropped');
    assert.ok(free() > 0, 'the file system never filled up');
    resize('64m'); // space comes back
    q.checkDisk();
    assert.equal(q.stats().disk.low, false, 'the low state clears by itself');
    const dropsBefore = q.stats().drops.s?.disk_full ?? 0;
    await q.enqueue('s', recs(100));
    assert.equal(q.stats().drops.s?.disk_full ?? 0, dropsBefore, 'no drops once space is back');
    q.close();
  });

  test('when the disk fills before any watermark, commits fail as retryable, nothing committed is lost, and it recovers', async (t) => {
    if (reason) return t.skip(reason);
    resize('8m');
    const q = Queue.open(options('b', { minFreeDisk: 0, fullPolicy: 'drop_newest' }));
    await q.enqueue('s', recs(100), { source: 'src', value: 1 });
    const filler = join(mnt, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(free())); // takes every byte left
    } catch {
      // ENOSPC at the very end: the disk is full, which is what we want
    }
    let failure: unknown;
    for (let i = 2; i < 200 && failure === undefined; i++) {
      await q.enqueue('s', recs(100), { source: 'src', value: i }).catch((err: unknown) => (failure = err));
    }
    assert.ok(isAgentError(failure, 'QUEUE_WRITE_FAILED') && failure.retryable, `a full disk is a retryable write failure (got ${String(failure)})`);
    assert.equal(q.stats().disk.low, true, 'and it is reported');
    rmSync(filler);
    resize('64m');
    q.checkDisk();
    await q.enqueue('s', recs(100), { source: 'src', value: 999 });
    assert.equal(q.cursor('src'), 999, 'commits work again once space is back');
    assert.ok(q.stats().records >= 200, 'records committed before the disk filled are still there');
    q.close();
  });

  test('a queue that grew into the watermark and drained takes new records again (its free pages count as free)', async (t) => {
    if (reason) return t.skip(reason);
    resize('32m');
    // The watermark 3 MiB under what is free now (the earlier tests' files stay): the queue grows into it.
    const minFreeDisk = free() - 3 * 1024 * 1024;
    const opts = options('c', { minFreeDisk, reserveBytes: 0, fullPolicy: 'drop_newest', batchMaxRecords: 100 });
    const q = Queue.open(opts);
    for (let i = 0; i < 600 && !q.stats().disk.low; i++) await q.enqueue('s', recs(100));
    assert.equal(q.stats().disk.low, true, 'the queue grew into the watermark');
    const held = q.stats().records;
    let drained = 0;
    for (let batch = q.nextBatch(new Set(), 16); batch; batch = q.nextBatch(new Set(), 16)) {
      q.ack(batch);
      drained += batch.count;
    }
    await q.flush();
    assert.equal(drained, held);
    assert.equal(q.stats().records, 0, 'drained');
    q.close();
    // Meanwhile something else (logs, another program) takes a little of the disk: the file system alone is
    // now under the watermark, and only the drained queue's own free pages (the file never shrinks) make up
    // for it. Without counting them, the restarted queue would hold a cap of 0 bytes and drop every record.
    const other = join(mnt, 'other');
    writeFileSync(other, Buffer.alloc(free() - minFreeDisk + 512 * 1024));
    assert.ok(free() < minFreeDisk, 'the file system alone is under the watermark');

    const again = Queue.open(opts);
    try {
      assert.equal(again.stats().disk.low, false, "the drained file's free pages count as free space");
      for (let i = 0; i < 5; i++) await again.enqueue('s', recs(100));
      assert.deepEqual(again.stats().drops.s?.disk_full ?? 0, q.stats().drops.s?.disk_full ?? 0, 'no new record is dropped for want of disk');
      assert.equal(again.stats().records, 500);
    } finally {
      again.close();
      rmSync(other);
    }
  });
});
