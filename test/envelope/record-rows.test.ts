/**
 * Rows that share their keys (`RecordRows`, a SQL result read as arrays) must be written as exactly the bytes
 * of the records `asRecords` makes of them: the writer writes the columns' keys once per emit and never makes
 * the objects, and any column set whose records would differ (a name twice, array indexes, `__proto__`, a key
 * to repair) goes through the records themselves. Through the queue, a stamp of `ts` is appended as on
 * records, or set in place where a `ts` column holds nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { asRecords, ordinaryColumns, type AgentRecord, type RecordRows } from '../../agent/domain/record.ts';
import { decodeRecords, encodeRecords } from '../../agent/envelope/codec.ts';
import { arrayHeadBytes } from '../../agent/envelope/cbor-head.ts';
import { MAX_NESTING } from '../../agent/envelope/cbor-decode.ts';
import { RecordWriter } from '../../agent/envelope/record-writer.ts';
import { Queue } from '../../agent/queue/queue.ts';
import { recordMaker } from '../../drivers/sources/synthetic/shapes.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';

/** Rows of these records, one column per key of the first (values of a missing key left undefined). */
function rowsOf(records: AgentRecord[]): RecordRows {
  const columns = Object.keys(records[0]!);
  return { columns, rows: records.map((r) => columns.map((c) => r[c])) };
}

/** The bytes the writer gives for an emit and what it counted. */
function written(emit: AgentRecord[] | RecordRows, maxRecordBytes = 1 << 24, stampTs?: number) {
  const out = new RecordWriter().write(emit, maxRecordBytes, stampTs);
  return { hex: out.records.bytes.toString('hex'), ends: [...out.records.ends], invalid: out.invalid, tooLarge: out.tooLarge, repaired: out.repaired };
}

function deep(depth: number): AgentRecord {
  let v: AgentRecord = { leaf: 1 };
  for (let i = 2; i < depth; i++) v = { v };
  return v;
}

const values: unknown[] = [
  0,
  -1,
  24,
  65536,
  0xffffffff,
  0x100000000,
  1767225600123,
  Number.MAX_SAFE_INTEGER,
  2 ** 53,
  1.5,
  Math.PI,
  Number.NaN,
  -0,
  '',
  'x'.repeat(31),
  'é'.repeat(40),
  '€'.repeat(22000),
  'a\ud800b',
  null,
  undefined,
  true,
  new Uint8Array([1, 2, 3]),
  Buffer.alloc(300, 7),
  [1, 'two', [3]],
  { nested: { a: [{ b: 1 }] } },
  new Date(0),
  new Map([['a', 1]]),
  2n ** 70n,
  5n,
];

test('rows are written as the bytes of the records they stand for: realistic rows, every kind of value', () => {
  const make = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 120 });
  const realistic = Array.from({ length: 500 }, (_, n) => make(n, 1767225600000 + n, n % 500) as AgentRecord);
  const rows = rowsOf(realistic);
  const expected = Buffer.from(encodeRecords(structuredClone(realistic))).subarray(arrayHeadBytes(realistic.length));
  assert.equal(written(rows).hex, expected.toString('hex'));

  // One column per kind of value, and each value alone in a row under changing column names.
  const wide: RecordRows = { columns: values.map((_, i) => `c${i}`), rows: [values.slice(), values.slice().reverse()] };
  assert.deepEqual(written(wide), written(asRecords(structuredClone(wide))));
  for (const [i, v] of values.entries()) {
    const one: RecordRows = { columns: ['id', `v${i % 3}`], rows: [[i, v]] };
    assert.deepEqual(written(one), written(asRecords(one)), `value ${i}`);
  }
});

test('rows whose records would differ from the columns go through the records: the same bytes either way', () => {
  const sets: string[][] = [
    ['a', 'b', 'a'],
    ['2', '1', 'x'],
    ['x', '0'],
    ['__proto__', 'n'],
    ['k\ud800', 'n'],
    ['01', '4294967295', '-1'],
  ];
  for (const columns of sets) {
    const rows: RecordRows = { columns, rows: [columns.map((_, j) => j + 1), columns.map((_, j) => `v${j}`)] };
    assert.deepEqual(written(rows), written(asRecords(structuredClone(rows))), columns.join(','));
  }
  assert.equal(ordinaryColumns(['a', 'b', 'a']), false);
  assert.equal(ordinaryColumns(['2', 'x']), false);
  assert.equal(ordinaryColumns(['__proto__']), false);
  // Not array indexes: an object keeps these where they are.
  assert.equal(ordinaryColumns(['01', '4294967295', '-1', '1.5', 'id', 'ts']), true);
});

test('rows that cannot be written are dropped and counted as records are, the rest kept in order', () => {
  const rows: RecordRows = {
    columns: ['n', 'v'],
    rows: [
      [1, 'ok'],
      [2, () => 1],
      [3, deep(MAX_NESTING)],
      [4, Symbol('x')],
      [5, 'x'.repeat(500)],
      [6, 2n ** 70n],
      [7, 'fine'],
    ],
  };
  const out = written(rows, 200);
  assert.deepEqual(out, written(asRecords(rows), 200));
  assert.equal(out.invalid, 3);
  assert.equal(out.tooLarge, 1);
  assert.equal(out.ends.length, 3);
});

test('a stamp is written as a last `ts` key, as on a record that had none', () => {
  const rows: RecordRows = {
    columns: ['id', 'v'],
    rows: [
      [1, 'a'],
      [2, 2.5],
    ],
  };
  const stamped = asRecords(structuredClone(rows)).map((r) => ({ ...r, ts: 1767225600777 }));
  assert.deepEqual(written(rows, 1 << 24, 1767225600777), written(stamped));
  const odd: RecordRows = { columns: ['n', 'n'], rows: [[1, 2]] };
  assert.deepEqual(written(odd, 1 << 24, 1767225600777), written([{ n: 2, ts: 1767225600777 }]));
});

test('through the queue: rows are stored as the records they stand for, ts stamped as on records', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-rows-'));
  const now = 1767225600999;
  const queue = Queue.open(testQueueOptions(join(dir, 'q.db'), { now: () => now, codec: { compression: 'none', level: undefined } }));
  try {
    await queue.enqueue('with-ts', {
      columns: ['id', 'ts', 'v'],
      rows: [
        [1, 5, 'a'],
        [2, undefined, 'b'],
        [3, null, 'c'],
      ],
    });
    await queue.enqueue('without-ts', {
      columns: ['id', 'v'],
      rows: [
        [1, 'a'],
        [2, { x: [1] }],
      ],
    });
    await queue.enqueue('not-rows', { columns: ['id'], rows: [[1], 'oops' as never, [3]] });
    const byStream = new Map<string, AgentRecord[]>();
    const busy = new Set<string>();
    for (let b = queue.nextBatch(busy); b; b = queue.nextBatch(busy)) {
      busy.add(b.key);
      byStream.set(b.stream, [...(byStream.get(b.stream) ?? []), ...decodeRecords(b.body)]);
    }
    const records = (stream: string) => byStream.get(stream);
    assert.deepEqual(records('with-ts'), [
      { id: 1, ts: 5, v: 'a' },
      { id: 2, ts: now, v: 'b' },
      { id: 3, ts: null, v: 'c' },
    ]);
    assert.deepEqual(records('without-ts'), [
      { id: 1, v: 'a', ts: now },
      { id: 2, v: { x: [1] }, ts: now },
    ]);
    assert.deepEqual(records('not-rows'), [
      { id: 1, ts: now },
      { id: 3, ts: now },
    ]);
    assert.equal(queue.stats().drops['not-rows']?.invalid, 1, 'the row that is not an array is counted');
  } finally {
    queue.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
