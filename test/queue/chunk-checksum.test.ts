/**
 * A chunk's payload carries the CRC-32 it was written with (agent/queue/schema.ts), checked when its batch is
 * read. SQLite checks its own pages' structure, not the bytes of a BLOB: a payload changed on the card would
 * otherwise leave as a batch body that is not what was written, or, in a batch of several chunks that no
 * longer decodes, stop every batch behind it. A damaged batch is set aside (counted as `corrupt`, durably, and
 * logged with its stream, batch and chunk); the others go.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import { createLogger } from '../../agent/log.ts';
import { Queue, type QueueOptions } from '../../agent/queue/queue.ts';
import type { AgentRecord } from '../../agent/domain/record.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';
import { queueCli } from '../helpers/queue-tools.ts';
import { readExport } from '../../agent/queue/export-format.ts';

/** Records that do not compress to nothing: each commit's chunk is large enough not to be merged with others. */
const record = (n: number) => ({ n, noise: randomBytes(600).toString('base64') });

/** Every record each batch the queue hands out carries, acknowledging them as a sink would. */
function drain(queue: Queue): number[] {
  const sent: number[] = [];
  for (let batch = queue.nextBatch(new Set()); batch; batch = queue.nextBatch(new Set())) {
    for (const r of decodeRecords(decompress(batch.body, batch.compression, 1 << 20))) sent.push(r.n as number);
    queue.ack(batch);
  }
  return sent;
}

function withDir(name: string, body: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), `edge-${name}-`));
    try {
      await body(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** Changes one byte in the middle of a chunk's payload, as a failing card would, behind the queue's back. */
function damage(path: string, chunkId: number): void {
  const db = new Database(path);
  const payload = db.prepare('SELECT payload FROM chunks WHERE id = ?').pluck().get(chunkId) as Buffer;
  payload[payload.length >> 1]! ^= 0x10;
  db.prepare('UPDATE chunks SET payload = ? WHERE id = ?').run(payload, chunkId);
  db.close();
}

/** A queue file at `path` holding `records`, each committed alone (one chunk each), then closed. */
async function queueOf(options: QueueOptions, records: AgentRecord[]): Promise<void> {
  const queue = Queue.open(options);
  for (const r of records) await queue.enqueue('s', [r], undefined);
  queue.close();
}

test(
  'a chunk changed on disk is set aside as corrupt, counted durably and logged; the batches behind it go',
  withDir('crc', async (dir) => {
    const path = join(dir, 'q.db');
    const options = testQueueOptions(path, { batchMaxBytes: 16 * 1024 });
    await queueOf(
      options,
      Array.from({ length: 3 }, (_, i) => record(i + 1)),
    );
    damage(path, 2);

    const logFile = join(dir, 'log.jsonl');
    const queue = Queue.open({ ...options, log: createLogger('info', { format: 'json', destination: logFile }) });
    assert.deepEqual(drain(queue), [1, 3], 'the damaged chunk is not sent, the one behind it is');
    assert.equal(queue.stats().drops.s?.corrupt, 1);
    queue.close();
    const lines = readFileSync(logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const logged = lines.find((l) => l.msg === 'damaged batch set aside; its records are lost');
    assert.ok(logged, `no line about the damaged batch: ${JSON.stringify(lines)}`);
    assert.equal(logged.level, 'error');
    assert.equal(logged.stream, 's');
    assert.match(String(logged.err), /QUEUE_CORRUPT.*chunk 2 of stream s .*checksum/);

    const again = Queue.open(options);
    assert.equal(again.stats().drops.s?.corrupt, 1, 'counted durably');
    assert.equal(again.stats().records, 0);
    again.close();
  }),
);

test(
  'a batch merged from small chunks, one of them changed on disk, is set aside whole; the next batch goes',
  withDir('crc-merged', async (dir) => {
    const path = join(dir, 'q.db');
    // Chunks below 1/64 of batch.max_bytes stored are merged into one batch (queue/planner.ts).
    const options = testQueueOptions(path, { batchMaxBytes: 64 * 1024, batchMaxRecords: 5 });
    await queueOf(
      options,
      Array.from({ length: 10 }, (_, i) => ({ n: i + 1, text: 'a'.repeat(50) })),
    );
    damage(path, 3);

    const queue = Queue.open(options);
    assert.deepEqual(drain(queue), [6, 7, 8, 9, 10], 'the batch of records 1–5 holds the damaged chunk');
    assert.equal(queue.stats().drops.s?.corrupt, 5);
    queue.close();
  }),
);

test(
  'chunks written without a checksum (an older build, a salvage) still go',
  withDir('crc-none', async (dir) => {
    const path = join(dir, 'q.db');
    const options = testQueueOptions(path, { batchMaxBytes: 16 * 1024 });
    await queueOf(
      options,
      Array.from({ length: 2 }, (_, i) => record(i + 1)),
    );
    const db = new Database(path);
    assert.equal(db.prepare('SELECT count(*) FROM chunks WHERE crc32 IS NOT NULL').pluck().get(), 2, 'written with their checksums');
    db.prepare('UPDATE chunks SET crc32 = NULL').run();
    db.close();

    const queue = Queue.open(options);
    assert.deepEqual(drain(queue), [1, 2]);
    assert.equal(queue.stats().drops.s?.corrupt, undefined);
    queue.close();
  }),
);

test(
  'a changed payload that still decodes (stored uncompressed) is caught by its checksum: not sent, not exported, not salvaged',
  withDir('crc-tools', async (dir) => {
    const path = join(dir, 'q.db');
    // Uncompressed, a byte changed inside a record's text still decodes, as another record: only the checksum tells.
    const options = testQueueOptions(path, { batchMaxBytes: 16 * 1024, codec: { compression: 'none', level: undefined } });
    await queueOf(
      options,
      Array.from({ length: 3 }, (_, i) => record(i + 1)),
    );
    damage(path, 2);

    const exported = await queueCli(['export', '--file', path, '--format', 'cbor', '--out', join(dir, 'export.cbor')]);
    assert.notEqual(exported.code, 0, 'export refuses the file');
    assert.match(exported.stderr, /chunk 2 of stream s is damaged \(its checksum differs\)/);

    const out = join(dir, 'salvaged.cbor');
    const salvaged = await queueCli(['salvage', path, '--out', out, '--format', 'cbor', '--json']);
    const report = JSON.parse(salvaged.stdout) as { chunks: number; damagedChunks: number; damagedRecords: number };
    assert.deepEqual([report.chunks, report.damagedChunks, report.damagedRecords], [2, 1, 1]);
    const kept: number[] = [];
    for await (const unit of (await readExport(out)).units) for (const r of unit.records) kept.push(r.n as number);
    assert.deepEqual(kept, [1, 3]);

    const queue = Queue.open(options);
    assert.deepEqual(drain(queue), [1, 3]);
    assert.equal(queue.stats().drops.s?.corrupt, 1);
    queue.close();
  }),
);
