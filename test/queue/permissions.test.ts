import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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

// Node's recursive mkdir never returns when mkdir answers ENOENT under a parent that exists, as in /proc: the
// agent spun at start, deaf to SIGTERM. The directories are made one level at a time, so it fails at once.
test('a data_dir where no directory can be made (under /proc) fails at start naming it, instead of hanging', { skip: !existsSync('/proc/self') }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-agent-procdir-'));
  try {
    const file = join(dir, 'agent.yaml');
    writeFileSync(
      file,
      'device:\n  id: gw-proc\ndata_dir: /proc/edge-agent-nowhere/data\nkeys:\n  device_private: keys/device.key\n  centre_public: keys/centre.pub\n  generate_if_missing: true\n' +
        'sources:\n  - { type: synthetic, name: gen, rate: 0, count: 1 }\nsink:\n  type: mqtt\n  url: mqtt://127.0.0.1:1\n',
    );
    const root = resolve(import.meta.dirname, '../..');
    const node = join(root, 'node_modules/.bin/node');
    const r = await new Promise<{ code: number | string | null; signal: string | null; stderr: string }>((done) =>
      execFile(node, [join(root, 'agent/cli/main.ts'), 'run', '--config', file], { cwd: dir, timeout: 60_000, killSignal: 'SIGKILL' }, (err, _out, stderr) =>
        done({ code: err ? (err.code ?? null) : 0, signal: err?.signal ?? null, stderr }),
      ),
    );
    assert.equal(r.signal, null, `killed after 60 s: it hung\n${r.stderr}`);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /QUEUE_OPEN_FAILED: cannot create the queue directory \/proc\/edge-agent-nowhere\/data/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
