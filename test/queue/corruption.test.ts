import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
  statSync,
  openSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Queue, type QueueOptions } from '../../agent/queue/queue.ts';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import { silentLogger } from '../../agent/log.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'edge-corrupt-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const path = () => join(dir, 'queue.db');
function options(over: Partial<QueueOptions> = {}): QueueOptions {
  return {
    path: path(),
    synchronous: 'full',
    commitEveryRecords: 100,
    commitIntervalMs: 5,
    maxBytes: 1 << 28,
    maxAgeMs: 86_400_000 * 30,
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
// Random-ish payloads so chunks do not compress into a page or two.
const recs = (from: number, n: number): AgentRecord[] => Array.from({ length: n }, (_, i) => ({ n: from + i, pad: `${(from + i) * 7919}`.repeat(8) }));

function quarantined(): string[] {
  return readdirSync(dir).filter((f) => f.includes('.corrupt-'));
}

function drain(q: Queue): number[] {
  const out: number[] = [];
  const busy = new Set<string>();
  for (let b = q.nextBatch(busy); b; b = q.nextBatch(busy)) {
    busy.add(b.key);
    for (const r of decodeRecords(decompress(b.body, b.compression, 1 << 28))) out.push(r.n as number);
  }
  return out;
}

async function filledQueue(records: number): Promise<void> {
  const q = Queue.open(options());
  for (let i = 0; i < records; i += 100) await q.enqueue('s', recs(i + 1, 100), { source: 'src', value: i + 100 });
  q.close();
}

describe('queue file corruption', () => {
  test('a garbage file where the queue should be is quarantined byte for byte, and a fresh queue takes over', async () => {
    const garbage = Buffer.from('this is not a database, just bytes someone left here\n'.repeat(200));
    writeFileSync(path(), garbage);
    const q = Queue.open(options());
    assert.ok(q.recovery, 'recovery is reported');
    assert.match(q.recovery.reason, /NOTADB|not a database/i);
    assert.deepEqual(readFileSync(q.recovery.quarantinedAs), garbage, 'never deleted or changed');
    await q.enqueue('s', recs(1, 3));
    assert.deepEqual(drain(q), [1, 2, 3]);
    q.close();
    const again = Queue.open(options());
    assert.equal(again.recovery, undefined, 'no crash loop: the fresh queue opens cleanly');
    assert.equal(quarantined().length, 1);
    again.close();
  });

  test('a foreign SQLite database is quarantined, not wiped, and nothing is salvaged from it', () => {
    const foreign = new Database(path());
    foreign.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5)');
    foreign.close();
    const q = Queue.open(options());
    assert.match(q.recovery!.reason, /not an edge-agent queue.*invoices/);
    assert.equal(q.recovery!.salvagedChunks, 0);
    const kept = new Database(q.recovery!.quarantinedAs, { readonly: true });
    assert.equal(kept.prepare('SELECT total FROM invoices').pluck().get(), 9.5);
    kept.close();
    q.close();
  });

  test('a truncated queue file: what can be read is salvaged, the rest is counted as lost', async () => {
    await filledQueue(3000);
    const size = statSync(path()).size;
    truncateSync(path(), Math.floor(size * 0.6));
    const q = Queue.open(options());
    const r = q.recovery!;
    assert.ok(r, 'the damage is noticed');
    const salvaged = drain(q);
    assert.equal(salvaged.length, r.salvagedRecords);
    assert.ok(r.salvagedRecords > 0 && r.salvagedRecords < 3000, `salvaged ${r.salvagedRecords} of 3000`);
    assert.equal(new Set(salvaged).size, salvaged.length, 'no record twice');
    assert.ok(existsSync(r.quarantinedAs));
    q.close();
  });

  test('a damaged page after an unclean stop fails the integrity check; the other chunks are salvaged', async () => {
    const q0 = Queue.open(options());
    for (let i = 0; i < 3000; i += 100) await q0.enqueue('s', recs(i + 1, 100), { source: 'src', value: i + 100 });
    await q0.flush();
    // Copy the files while the queue is open: the copy looks like a queue whose process died (no clean mark).
    const crashed = join(dir, 'crashed.db');
    copyFileSync(path(), crashed);
    if (existsSync(`${path()}-wal`)) copyFileSync(`${path()}-wal`, `${crashed}-wal`);
    q0.close();
    // Checkpoint the copy into its main file, then overwrite one page in the middle with noise.
    const db = new Database(crashed);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const fd = openSync(crashed, 'r+');
    const page = 4096;
    const pages = Math.floor(statSync(crashed).size / page);
    writeSync(fd, Buffer.alloc(page, 0xa5), 0, page, page * Math.floor(pages / 2));
    closeSync(fd);
    const q = Queue.open(options({ path: crashed }));
    const r = q.recovery!;
    assert.ok(r, 'an unclean stop triggers the integrity check, which finds the damage');
    assert.ok(r.salvagedRecords > 2000, `most records survive one bad page (salvaged ${r.salvagedRecords})`);
    assert.equal(q.cursor('src'), 3000, 'cursors are salvaged');
    q.close();
  });

  test('an invalid WAL header is quarantined with its database instead of being silently reset', async () => {
    const q0 = Queue.open(options());
    await q0.enqueue('s', recs(1, 50));
    const crashed = join(dir, 'crashed.db');
    copyFileSync(path(), crashed);
    copyFileSync(`${path()}-wal`, `${crashed}-wal`);
    q0.close();
    const wal = readFileSync(`${crashed}-wal`);
    wal.fill(0x5a, 0, 32);
    writeFileSync(`${crashed}-wal`, wal);
    const q = Queue.open(options({ path: crashed }));
    assert.match(q.recovery!.reason, /WAL/);
    assert.deepEqual(readFileSync(`${q.recovery!.quarantinedAs}-wal`), wal, 'the WAL is kept as it was');
    q.close();
  });

  test('an intact queue after a crash passes the check and is used as it is', async () => {
    const q0 = Queue.open(options());
    await q0.enqueue('s', recs(1, 250), { source: 'src', value: 250 });
    const crashed = join(dir, 'crashed.db');
    copyFileSync(path(), crashed);
    copyFileSync(`${path()}-wal`, `${crashed}-wal`);
    q0.close();
    const q = Queue.open(options({ path: crashed }));
    assert.equal(q.recovery, undefined);
    assert.equal(drain(q).length, 250);
    assert.equal(q.cursor('src'), 250);
    q.close();
  });
});
