/**
 * How record numbers cross the wire (docs/wire-format.md, "Body"): every safe integer is a CBOR integer
 * (major type 0 or 1) in its shortest form, 64-bit ones included, instead of the float64 a plain encoder
 * would write beyond ±2^32; anything else that is a number stays a float64. On decode, a 64-bit integer that
 * a number holds exactly comes back as a number, a larger one as a BigInt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecords, encodeRecords } from '../../agent/envelope/codec.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/** CBOR of [{"v": value}] is 81 b9 0001 61 76 followed by the value's own bytes. */
const PREFIX = '81' + 'b90001' + '6176';

function valueBytes(value: unknown): string {
  const out = hex(encodeRecords([{ v: value } as AgentRecord]));
  assert.ok(out.startsWith(PREFIX), `record framing: ${out}`);
  return out.slice(PREFIX.length);
}

function roundTrip(value: unknown): unknown {
  return (decodeRecords(encodeRecords([{ v: value } as AgentRecord]))[0] as { v: unknown }).v;
}

/** The expected encoding, written from RFC 8949 rather than by an encoder: major type, then the argument. */
function cborInt(n: bigint): string {
  const major = n >= 0n ? 0 : 1;
  const arg = n >= 0n ? n : -1n - n;
  if (arg < 24n) return ((major << 5) | Number(arg)).toString(16).padStart(2, '0');
  const [ai, bytes] = arg < 0x100n ? [24, 1] : arg < 0x10000n ? [25, 2] : arg < 0x100000000n ? [26, 4] : [27, 8];
  return ((major << 5) | ai).toString(16).padStart(2, '0') + arg.toString(16).padStart(bytes * 2, '0');
}

function float64(n: number): string {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n);
  return `fb${b.toString('hex')}`;
}

/** Major type of the first byte, and the additional information (the argument's size). */
function head(bytes: string): { major: number; info: number } {
  const first = parseInt(bytes.slice(0, 2), 16);
  return { major: first >> 5, info: first & 0x1f };
}

const BOUNDARIES: { value: number; major: 0 | 1; info: number; bytes: string }[] = [
  { value: 0, major: 0, info: 0, bytes: '00' },
  { value: 23, major: 0, info: 23, bytes: '17' },
  { value: -1, major: 1, info: 0, bytes: '20' },
  { value: 2 ** 32 - 1, major: 0, info: 26, bytes: '1affffffff' },
  { value: 2 ** 32, major: 0, info: 27, bytes: '1b0000000100000000' },
  { value: -(2 ** 32), major: 1, info: 26, bytes: '3affffffff' },
  { value: -(2 ** 32) - 1, major: 1, info: 27, bytes: '3b0000000100000000' },
  { value: 1767225600000, major: 0, info: 27, bytes: '1b0000019b76daa800' },
  { value: Number.MAX_SAFE_INTEGER, major: 0, info: 27, bytes: '1b001fffffffffffff' },
  { value: -Number.MAX_SAFE_INTEGER, major: 1, info: 27, bytes: '3b001ffffffffffffe' },
];

for (const { value, major, info, bytes } of BOUNDARIES) {
  test(`integer ${value}: major type ${major}, ${bytes.length / 2 - 1}-byte argument, back as the same number`, () => {
    const encoded = valueBytes(value);
    assert.equal(encoded, bytes);
    assert.equal(encoded, cborInt(BigInt(value)), 'RFC 8949 shortest form');
    assert.deepEqual(head(encoded), { major, info });
    const back = roundTrip(value);
    assert.equal(typeof back, 'number');
    assert.equal(back, value);
  });
}

test('every safe integer in a sweep around the 2^32 and 2^53 boundaries is an integer on the wire', () => {
  for (const centre of [2 ** 32, -(2 ** 32), 2 ** 40, 2 ** 53 - 20, -(2 ** 53) + 20]) {
    for (let d = -3; d <= 3; d++) {
      const value = centre + d;
      if (!Number.isSafeInteger(value)) continue;
      const encoded = valueBytes(value);
      assert.equal(encoded, cborInt(BigInt(value)), String(value));
      assert.ok(head(encoded).major <= 1, `${value} is major type 0/1`);
      assert.equal(roundTrip(value), value);
    }
  }
});

test('non-integer numbers and integers beyond 2^53 stay float64', () => {
  for (const value of [1.5, -0.5, 0.1, 21.37, 1e20, -1e20, 2 ** 53, 2 ** 60, 1.7976931348623157e308, 5e-324]) {
    const encoded = valueBytes(value);
    assert.equal(encoded, float64(value), String(value));
    assert.deepEqual(head(encoded), { major: 7, info: 27 });
    const back = roundTrip(value);
    assert.equal(typeof back, 'number');
    assert.equal(back, value);
  }
});

test('a BigInt beyond 2^53 stays a 64-bit CBOR integer and decodes to a BigInt', () => {
  const cases: [bigint, string][] = [
    [2n ** 53n + 1n, '1b0020000000000001'],
    [2n ** 64n - 1n, '1bffffffffffffffff'],
    [-(2n ** 53n) - 1n, '3b0020000000000000'],
    [-(2n ** 63n), '3b7fffffffffffffff'],
  ];
  for (const [value, bytes] of cases) {
    const encoded = valueBytes(value);
    assert.equal(encoded, bytes, String(value));
    assert.equal(encoded, cborInt(value));
    const back = roundTrip(value);
    assert.equal(typeof back, 'bigint', `${value} stays a BigInt`);
    assert.equal(back, value);
  }
  // A small BigInt is an integer on the wire like any other, and comes back as a plain number.
  assert.equal(roundTrip(5n), 5);
  assert.equal(roundTrip(BigInt(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER);
});

test('integers are found in nested maps and arrays, at any depth', () => {
  const record = {
    ts: 1767225600000,
    small: 7,
    nested: { a: { b: [2 ** 40, { c: -(2 ** 33) }, 1.5] }, list: [[2 ** 32]] },
    readings: [
      { at: 1767225601000, value: 21.5 },
      { at: 1767225602000, value: 22 },
    ],
  };
  const cbor = hex(encodeRecords([structuredClone(record)]));
  assert.ok(!cbor.includes(float64(1767225600000).slice(2)), 'no float64 timestamp');
  for (const n of [1767225600000, 2 ** 40, -(2 ** 33), 2 ** 32, 1767225601000, 1767225602000]) {
    assert.ok(cbor.includes(cborInt(BigInt(n))), `${n} as an integer`);
  }
  assert.ok(cbor.includes(float64(1.5)) && cbor.includes(float64(21.5)), 'floats stay floats');
  const [back] = decodeRecords(unhex(cbor));
  assert.deepEqual(back, record);
  const typed = back as typeof record;
  assert.equal(typeof typed.nested.a.b[0], 'number');
  assert.equal(typeof (typed.nested.a.b[1] as { c: unknown }).c, 'number');
});

test('byte strings go through untouched', () => {
  const bytes = Uint8Array.from([0x00, 0x01, 0xff, 0x1b, 0xfb]);
  const record = { raw: bytes, ts: 1767225600000, empty: new Uint8Array(0) };
  const cbor = hex(encodeRecords([record]));
  assert.ok(cbor.includes('63726177' + '45' + '0001ff1bfb'), '"raw": a 5-byte byte string (major type 2), no tag');
  assert.ok(cbor.includes('65656d707479' + '40'), '"empty": a 0-byte byte string');
  assert.deepEqual([...bytes], [0x00, 0x01, 0xff, 0x1b, 0xfb], "the caller's bytes are not changed");
  assert.equal(record.raw, bytes, 'nor replaced');
  const [back] = decodeRecords(unhex(cbor)) as [{ raw: Uint8Array; ts: number; empty: Uint8Array }];
  assert.ok(back.raw instanceof Uint8Array);
  assert.deepEqual([...back.raw], [...bytes]);
  assert.equal(back.empty.length, 0);
  assert.equal(back.ts, 1767225600000);
});

test('a receiver takes an integer field in float64 form too (another encoder may send it so)', () => {
  // [{"v": 1767225600000.0}] as float64, and the same value as a 4-byte float of a small integer.
  assert.deepEqual(decodeRecords(unhex(PREFIX + float64(1767225600000))), [{ v: 1767225600000 }]);
  assert.deepEqual(decodeRecords(unhex(`${PREFIX}fa41a80000`)), [{ v: 21 }]);
  // And a 64-bit argument for a small integer (not shortest form) is still that integer, as a number.
  assert.deepEqual(decodeRecords(unhex(`${PREFIX}1b0000000000000015`)), [{ v: 21 }]);
  assert.deepEqual(decodeRecords(unhex(`${PREFIX}3b0000000000000014`)), [{ v: -21 }]);
});
