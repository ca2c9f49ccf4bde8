import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Queue } from '../../agent/queue/queue.ts';
import { readExport } from '../../agent/queue/export-format.ts';
import type { AgentRecord } from '../../agent/domain/record.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';
import { fileDigest, queueCli, recordKey, sensorRecords } from '../helpers/queue-tools.ts';

const PER_CHUNK = 100;
const CHUNKS = Number(process.env.SALVAGE_TEST_CHUNKS ?? 60);

/** A closed queue of CHUNKS chunks of PER_CHUNK records each (one commit each), noisy enough to span pages. */
async function queueFile(dir: string): Promise<{ path: string; all: AgentRecord[] }> {
  const path = join(dir, 'queue.db');
  const q = Queue.open(testQueueOptions(path, { commitEveryRecords: PER_CHUNK }));
  const all: AgentRecord[] = [];
  for (let c = 0; c < CHUNKS; c++) {
    const records = sensorRecords(c * PER_CHUNK, PER_CHUNK).map((r) => ({ ...r, note: `reading ${Math.random().toString(36).repeat(3)}` }));
    all.push(...structuredClone(records));
    await q.enqueue(c % 3 === 0 ? 'alarms' : 'telemetry', records);
  }
  q.close();
  return { path, all };
}

interface Report {
  chunks: number;
  records: number;
  damagedChunks: number;
  damagedRecords: number;
  unreadableChunks: number;
}

async function salvage(dir: string, path: string, name: string): Promise<{ code: number; report: Report; records: AgentRecord[]; stderr: string }> {
  const out = join(dir, name);
  const before = fileDigest(path);
  const run = await queueCli(['salvage', path, '--out', out, '--format', 'cbor', '--json']);
  assert.equal(fileDigest(path), before, 'salvage wrote to the damaged file');
  const records: AgentRecord[] = [];
  for await (const unit of (await readExport(out)).units) records.push(...unit.records);
  return { code: run.code, report: JSON.parse(run.stdout) as Report, records, stderr: run.stderr };
}

/** Every salvaged record is one of the originals, none twice. */
function assertIntact(records: AgentRecord[], all: AgentRecord[]): void {
  const originals = new Set(all.map(recordKey));
  const seen = new Set<string>();
  for (const r of records) {
    const key = recordKey(r);
    assert.ok(originals.has(key), `salvaged a record that was never queued: ${key}`);
    assert.ok(!seen.has(key), `salvaged a record twice: ${key}`);
    seen.add(key);
  }
}

test('salvage: a healthy file comes out whole (exit 0)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-salvage-'));
  try {
    const { path, all } = await queueFile(dir);
    const s = await salvage(dir, path, 'all.cbor');
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.report.records, all.length);
    assert.deepEqual(s.records.map(recordKey).sort(), all.map(recordKey).sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('salvage: bytes flipped in two chunks’ pages lose exactly those chunks; every other record comes out intact', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-salvage-'));
  try {
    const { path, all } = await queueFile(dir);
    // Find two chunks' payloads in the file and spoil their first bytes: 0xff opens a raw deflate block of the
    // reserved type, which no decoder accepts.
    const db = new Database(path, { readonly: true });
    const victims = db.prepare('SELECT id, count, payload FROM chunks WHERE id IN (7, 31)').all() as { id: number; count: number; payload: Buffer }[];
    db.close();
    const image = readFileSync(path);
    const fd = openSync(path, 'r+');
    for (const v of victims) {
      const at = image.indexOf(v.payload.subarray(0, 24));
      assert.ok(at > 0 && image.indexOf(v.payload.subarray(0, 24), at + 1) === -1, `chunk ${v.id} not found once in the file`);
      writeSync(fd, Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4, at);
    }
    closeSync(fd);
    const s = await salvage(dir, path, 'flipped.cbor');
    assert.equal(s.code, 1, 'a loss must exit 1');
    assert.equal(s.report.damagedChunks, 2);
    assert.equal(s.report.damagedRecords, 2 * PER_CHUNK);
    assert.equal(s.report.unreadableChunks, 0);
    assert.equal(s.report.records, all.length - 2 * PER_CHUNK);
    assert.equal(s.records.length, all.length - 2 * PER_CHUNK);
    assertIntact(s.records, all);
    const lost = new Set(victims.flatMap((v) => Array.from({ length: PER_CHUNK }, (_, i) => (v.id - 1) * PER_CHUNK + i)));
    assert.deepEqual(
      s.records.map((r) => r.n as number).sort((a, b) => a - b),
      all
        .map((r) => r.n as number)
        .filter((n) => !lost.has(n))
        .sort((a, b) => a - b),
    );
    assert.match(s.stderr, new RegExp(`lost: ${2 * PER_CHUNK} records in 2 damaged chunks`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('salvage: a file cut mid-way yields every record on the surviving pages and accounts for the rest', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-salvage-'));
  try {
    const { path, all } = await queueFile(dir);
    truncateSync(path, Math.floor((statSync(path).size * 0.6) / 1024) * 1024 + 300);
    const s = await salvage(dir, path, 'cut.cbor');
    assert.equal(s.code, 1, s.stderr);
    assertIntact(s.records, all);
    assert.equal(s.report.records, s.records.length);
    assert.ok(s.records.length > 0 && s.records.length < all.length, `salvaged ${s.records.length} of ${all.length}`);
    // Every chunk holds PER_CHUNK records, so a row that could not be read at all is PER_CHUNK records too.
    assert.equal(s.report.records + s.report.damagedRecords + s.report.unreadableChunks * PER_CHUNK, all.length, JSON.stringify(s.report));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
