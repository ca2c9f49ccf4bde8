import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from '../../agent/queue/queue.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';

// Files that hold records are 0600 (the main file, its -wal and -shm) and the directories the agent creates
// for them 0700, whatever the umask lets through: a gateway's other users must not read queued data.

const options = (path: string) => testQueueOptions(path);

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

test('the queue file, its -wal and -shm are 0600 and the directories it creates 0700', async () => {
  const root = mkdtempSync(join(tmpdir(), 'edge-queue-modes-'));
  const previous = process.umask(0o022);
  try {
    const path = join(root, 'data', 'spool', 'queue.db');
    const q = Queue.open(options(path));
    await q.enqueue('s', [{ n: 1 }], { source: 'src', value: 1 });
    assert.ok(existsSync(`${path}-wal`) && existsSync(`${path}-shm`), 'WAL mode: both side files exist while open');
    assert.deepEqual(
      [mode(join(root, 'data')), mode(join(root, 'data', 'spool')), mode(path), mode(`${path}-wal`), mode(`${path}-shm`)],
      ['700', '700', '600', '600', '600'],
    );
    q.close();
  } finally {
    process.umask(previous);
    rmSync(root, { recursive: true, force: true });
  }
});

test('a queue file left 0644 by an earlier version is narrowed to 0600 when opened', async () => {
  const root = mkdtempSync(join(tmpdir(), 'edge-queue-modes-'));
  try {
    const path = join(root, 'queue.db');
    Queue.open(options(path)).close();
    chmodSync(path, 0o644);
    writeFileSync(`${path}-wal`, '');
    chmodSync(`${path}-wal`, 0o644);
    const q = Queue.open(options(path));
    await q.enqueue('s', [{ n: 1 }], { source: 'src', value: 1 });
    assert.deepEqual([mode(path), mode(`${path}-wal`), mode(`${path}-shm`)], ['600', '600', '600']);
    q.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
