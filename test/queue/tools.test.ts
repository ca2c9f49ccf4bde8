import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type LeasedBatch } from '../../agent/queue/queue.ts';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import { readExport } from '../../agent/queue/export-format.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';
import { fileDigest, queueCli, recordKey, sensorRecords } from '../helpers/queue-tools.ts';
import type { AgentRecord } from '../../agent/domain/record.ts';

function body(batch: LeasedBatch): AgentRecord[] {
  return decodeRecords(decompress(batch.body, batch.compression, 1 << 26), { text: 'replace' });
}

async function exportedRecords(file: string): Promise<{ seq: number | null; stream: string; records: AgentRecord[] }[]> {
  const reader = await readExport(file);
  const units = [];
  for await (const u of reader.units) units.push({ seq: u.seq, stream: u.stream, records: u.records });
  return units;
}

/**
 * A stopped queue with two streams, two batches of one recorded (numbered, as if sent and not yet
 * acknowledged) and the rest not yet in a batch.
 */
async function stoppedQueue(dir: string, perStream = 1_500) {
  const path = join(dir, 'queue.db');
  const q = Queue.open(testQueueOptions(path, { commitEveryRecords: 200 }));
  const all: AgentRecord[] = [];
  for (let i = 0; i < perStream; i += 150) {
    for (const stream of ['alarms', 'telemetry']) {
      const records = sensorRecords((stream === 'alarms' ? 0 : 1_000_000) + i, 150);
      all.push(...structuredClone(records));
      await q.enqueue(stream, records);
    }
  }
  const first = q.nextBatch(new Set())!;
  const second = q.nextBatch(new Set([first.key]))!;
  const leased = [first, second].map((b) => ({ stream: b.stream, seq: b.seq, records: body(b) }));
  q.close();
  return { path, all, leased };
}

test('export → purge → replay on a stopped queue: every record back once, recorded batches with their sequence and records; --yes required, --dry-run and a second replay change nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-qtools-'));
  try {
    const { path, all, leased } = await stoppedQueue(dir);
    const out = join(dir, 'export.cbor');
    const exported = await queueCli(['export', '--file', path, '--format', 'cbor', '--out', out]);
    assert.equal(exported.code, 0, exported.stderr);
    const units = await exportedRecords(out);
    assert.deepEqual(
      units
        .flatMap((u) => u.records)
        .map(recordKey)
        .sort(),
      all.map(recordKey).sort(),
    );
    assert.deepEqual(
      units.filter((u) => u.seq !== null).map((u) => `${u.stream}#${u.seq}`),
      leased.map((b) => `${b.stream}#${b.seq}`),
    );

    const before = fileDigest(path);
    const refused = await queueCli(['purge', '--file', path, '--from-export', out]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /will remove 3,000 records/);
    assert.match(refused.stderr, /add --yes/);
    const dry = await queueCli(['purge', '--file', path, '--from-export', out, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stderr, /would remove 3,000 records/);
    assert.equal(fileDigest(path), before, 'purge without --yes or with --dry-run wrote to the file');

    const purged = await queueCli(['purge', '--file', path, '--from-export', out, '--yes']);
    assert.equal(purged.code, 0, purged.stderr);
    assert.match(purged.stderr, /removed 3,000 records/);
    const empty = JSON.parse((await queueCli(['inspect', '--file', path, '--json'])).stdout) as { records: number; purgeLog: number };
    assert.equal(empty.records, 0);
    assert.equal(empty.purgeLog, units.length);

    const dryReplay = await queueCli(['replay', out, '--file', path, '--dry-run']);
    assert.equal(dryReplay.code, 0, dryReplay.stderr);
    assert.match(dryReplay.stderr, /would put back 3,000 records/);
    assert.equal((JSON.parse((await queueCli(['inspect', '--file', path, '--json'])).stdout) as { records: number }).records, 0, 'replay --dry-run wrote');
    const replayed = await queueCli(['replay', out, '--file', path, '--yes']);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.match(replayed.stderr, /replayed 3,000 records/);
    const again = await queueCli(['replay', out, '--file', path, '--yes']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /skipped: 3,000 records/);

    // The agent's side: the recorded batches leave first, with their sequence and their records, then the rest.
    const q = Queue.open(testQueueOptions(path));
    try {
      assert.equal(q.stats().records, all.length);
      const busy = new Set<string>();
      const sent: AgentRecord[] = [];
      const first: { stream: string; seq: number; records: AgentRecord[] }[] = [];
      for (let b = q.nextBatch(busy); b; b = q.nextBatch(busy)) {
        busy.add(b.key);
        if (first.length < leased.length) first.push({ stream: b.stream, seq: b.seq, records: body(b) });
        sent.push(...body(b));
      }
      assert.deepEqual(first.map((b) => `${b.stream}#${b.seq}`).sort(), leased.map((b) => `${b.stream}#${b.seq}`).sort());
      for (const b of leased) {
        const now = first.find((f) => f.stream === b.stream && f.seq === b.seq)!;
        assert.deepEqual(now.records.map(recordKey), b.records.map(recordKey), `batch ${b.stream}#${b.seq} changed`);
      }
      assert.deepEqual(sent.map(recordKey).sort(), all.map(recordKey).sort());
    } finally {
      q.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('NDJSON export replays to the same records (bytes, floats, nesting) as CBOR', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-qtools-'));
  try {
    const path = join(dir, 'queue.db');
    const q = Queue.open(testQueueOptions(path));
    const records = sensorRecords(0, 300).map((r, i) => ({ ...r, raw: new Uint8Array([i & 255, 7]), nested: { a: [1.5, -0, i], s: 'ü€' } }));
    await q.enqueue('s', structuredClone(records));
    q.close();
    const out = join(dir, 'e.ndjson');
    assert.equal((await queueCli(['export', '--file', path, '--out', out])).code, 0);
    const units = await exportedRecords(out);
    assert.deepEqual(units.flatMap((u) => u.records).map(recordKey), records.map(recordKey));
    // Filters: a stream that does not exist selects nothing; a seq range leaves out records not yet numbered.
    const none = join(dir, 'none.ndjson');
    assert.equal((await queueCli(['export', '--file', path, '--stream', 'other', '--out', none])).code, 0);
    assert.equal((await exportedRecords(none)).length, 0);
    const seqs = join(dir, 'seq.ndjson');
    assert.equal((await queueCli(['export', '--file', path, '--seq', '1-5', '--out', seqs])).code, 0);
    assert.equal((await exportedRecords(seqs)).length, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
