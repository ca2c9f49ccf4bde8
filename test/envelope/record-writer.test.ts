/**
 * Ingest's one-walk writer (record-writer.ts) must write exactly the bytes `encodeRecords` (cbor-x after the
 * ingest repair) writes for the same records: the centre decodes both, the vectors pin the latter.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeRecords, encodeRecords, type EncodeStats } from '../../agent/envelope/codec.ts';
import { MAX_NESTING } from '../../agent/envelope/cbor-decode.ts';
import { RecordWriter } from '../../agent/envelope/record-writer.ts';
import { arrayHeadBytes, writeArrayHead } from '../../agent/envelope/cbor-head.ts';
import type { AgentRecord } from '../../agent/domain/record.ts';
import { recordMaker } from '../../drivers/sources/synthetic/shapes.ts';

/** The records as one batch body, through the writer: the array head, then each record's bytes. */
function viaWriter(records: AgentRecord[], maxRecordBytes = Number.MAX_SAFE_INTEGER) {
  const out = new RecordWriter().write(records, maxRecordBytes);
  const body = Buffer.alloc(arrayHeadBytes(out.records.count) + out.records.bytes.length);
  const at = writeArrayHead(body, 0, out.records.count);
  out.records.bytes.copy(body, at);
  return { body, out };
}

/** The deepest record encodeRecords takes is nested(MAX_NESTING). */
function nested(depth: number): AgentRecord {
  let v: AgentRecord = { leaf: 1 };
  for (let i = 2; i < depth; i++) v = { v };
  return v;
}

const edgeNumbers = [
  0,
  -0,
  1,
  23,
  24,
  255,
  256,
  65535,
  65536,
  0xffffffff,
  0x100000000,
  -1,
  -24,
  -25,
  -256,
  -257,
  -65536,
  -65537,
  -0x80000000,
  -0x80000001,
  -0x100000000,
  -0x100000001,
  1767225600123,
  -1767225600123,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  2 ** 53,
  -(2 ** 60),
  1.5,
  -2.25,
  Math.PI,
  1e300,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  5e-324,
];

function cases(): AgentRecord[] {
  const make = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 120 });
  const big = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 5000 });
  const out: AgentRecord[] = [];
  for (let n = 1; n <= 300; n++) out.push(make(n, 1767225600000 + n, n % 500) as AgentRecord);
  for (let n = 1; n <= 20; n++) out.push(big(n, 1767225600000 + n, n % 500) as AgentRecord);
  for (const v of edgeNumbers) out.push({ v, list: [v, 'x', v] });
  const texts = [
    '',
    'é'.repeat(12),
    '€'.repeat(9),
    '😀'.repeat(6),
    'x'.repeat(20) + 'é'.repeat(3),
    'é'.repeat(200),
    '€'.repeat(22000),
    'a',
    'é',
    '€',
    '😀',
    'x'.repeat(23),
    'x'.repeat(24),
    'é'.repeat(31),
    'é'.repeat(32),
    '€'.repeat(63),
    '€'.repeat(64),
    'y'.repeat(255),
    'y'.repeat(256),
    '😀'.repeat(40),
    'z'.repeat(70000),
    'é'.repeat(30000),
  ];
  for (const t of texts) out.push({ t, [t.slice(0, 30) || 'k']: t });
  out.push({ bad: 'a\ud800b', list: ['\udc00', 'ok'], deep: { 'k\ud83d': 1 } });
  out.push({ bytes: new Uint8Array([1, 2, 3]), buf: Buffer.alloc(300, 7), empty: new Uint8Array(0), big: new Uint8Array(70000) });
  out.push({ t: true, f: false, n: null, u: undefined, a: [], o: {}, nested: { a: [{ b: [1, [2, [3]]] }] } });
  out.push({ date: new Date(0), map: new Map([['a', 1]]), big: 2n ** 70n, small: 5n, f32: new Float32Array([1.5]) });
  out.push(Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i])));
  out.push({ long: Array.from({ length: 70000 }, (_, i) => i * 1.5) });
  out.push(JSON.parse('{"__proto__": 5, "n": 2}') as AgentRecord);
  out.push(nested(MAX_NESTING));
  out.push({ fine: 'ok', other: 'x\udfff' });
  return out;
}

test('the writer writes, record by record, the bytes encodeRecords writes for the same records', () => {
  for (const record of cases()) {
    const expected = Buffer.from(encodeRecords([structuredClone(record)]));
    const { body } = viaWriter([structuredClone(record)]);
    assert.equal(body.toString('hex'), expected.toString('hex'), JSON.stringify(record, (_, v) => (typeof v === 'bigint' ? String(v) : v)).slice(0, 200));
  }
});

test('a whole emit through the writer is the batch encodeRecords makes of it, repaired records counted alike', () => {
  const records = cases();
  const stats: EncodeStats = { repaired: 0 };
  const expected = Buffer.from(encodeRecords(structuredClone(records), stats));
  const { body, out } = viaWriter(structuredClone(records));
  assert.equal(out.records.count, records.length);
  assert.equal(out.repaired, stats.repaired);
  assert.ok(out.repaired >= 2);
  assert.ok(body.equals(expected));
});

test('records that cannot be written are dropped and counted, the others kept in order', () => {
  const records: AgentRecord[] = [
    { n: 1 },
    { f: () => 1 },
    { n: 2 },
    nested(MAX_NESTING + 1),
    { n: 3 },
    { s: Symbol('x') },
    { blob: 'x'.repeat(500) },
    { n: 4 },
  ];
  const { body, out } = viaWriter(records, 200);
  assert.equal(out.invalid, 3);
  assert.equal(out.tooLarge, 1);
  assert.deepEqual(decodeRecords(body), [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
  assert.equal(out.records.ends.length, 4);
});

test('the writer does not change the records it writes (the ingest repair did, in place)', () => {
  const record: AgentRecord = { ts: 1767225600123, t: 'a\ud800' };
  new RecordWriter().write([record], 1 << 20);
  assert.deepEqual(record, { ts: 1767225600123, t: 'a\ud800' });
});

test('a writer reused for many emits, one of them large, writes each one right', () => {
  const writer = new RecordWriter();
  const make = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 5000 });
  for (const size of [10, 1000, 10, 3]) {
    const records = Array.from({ length: size }, (_, n) => make(n, 1767225600000, n) as AgentRecord);
    const expected = Buffer.from(encodeRecords(structuredClone(records))).subarray(arrayHeadBytes(size));
    const out = writer.write(records, 1 << 20);
    assert.ok(out.records.bytes.equals(expected));
    assert.equal(out.records.ends[size - 1], expected.length);
  }
});

test('a reused writer writes records of changing shapes and sizes right, emit after emit', () => {
  const writer = new RecordWriter();
  for (let emit = 0; emit < 30; emit++) {
    const records: AgentRecord[] = Array.from({ length: 1 + (emit % 7) }, (_, i) =>
      (emit + i) % 3 === 0 ? { n: emit * 1000 + i, text: 'x'.repeat((emit * 13 + i) % 90) } : { [`k${(emit + i) % 5}`]: i, ts: 1767225600000 + i, n: emit },
    );
    const expected = Buffer.from(encodeRecords(structuredClone(records))).subarray(arrayHeadBytes(records.length));
    assert.ok(writer.write(records, 1 << 20).records.bytes.equals(expected), `emit ${emit}`);
  }
});

test('keys kept by place from the last record: reordered, renamed, fewer or more keys, nested, 24–31 characters', () => {
  // The writer compares a record's keys with the last record's by place before it looks them up: every way
  // the places can change must still write each key's own bytes. Text of 24–31 UTF-16 units is written
  // with a two-byte head at once; multi-byte text of that length, and one-byte text of 23, must come out as
  // cbor-x writes them.
  const writer = new RecordWriter();
  const long = 'plant-3/line-11/sensor-123'; // 26 characters
  const records: AgentRecord[][] = [
    [{ a: 1, b: 'x', c: long }],
    [
      { a: 2, b: 'y', c: long },
      { b: 'z', a: 3, c: 'é'.repeat(24) },
    ],
    [{ a: 4, x: 'w', c: long.slice(0, 23) }, { a: 5 }, { a: 6, b: 'v', c: '€'.repeat(31), d: { a: 7, c: 8 } }],
    [
      { [long]: 1, a: 2 },
      { a: 3, [long]: 4 },
      { c: '😀'.repeat(12), b: 1, a: 2 },
    ],
    [Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`k${i}`, i])), Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`k${69 - i}`, i]))],
  ];
  for (const [emit, emitted] of records.entries()) {
    const expected = Buffer.from(encodeRecords(structuredClone(emitted))).subarray(arrayHeadBytes(emitted.length));
    const written = writer.write(emitted, 1 << 20).records;
    assert.ok(written.bytes.equals(expected), `emit ${emit}`);
    assert.deepEqual(decodeRecords(Buffer.concat([Buffer.from([0x80 | emitted.length]), written.bytes])), emitted);
  }
});
