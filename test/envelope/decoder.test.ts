/**
 * The strict batch decoder beyond the vectors: `__proto__` is an ordinary key all the way to the JSON output,
 * the nesting limit is the same on both sides of the wire, the queue can still read back invalid UTF-8 it
 * wrote before the repair, and the header checks run front to back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecords, encodeRecords } from '../../agent/envelope/codec.ts';
import { MAX_NESTING } from '../../agent/envelope/cbor-decode.ts';
import { decodeHeader } from '../../agent/envelope/header.ts';
import { isAgentError } from '../../agent/errors.ts';
import { toJsonLines } from '../../agent/receiver/output.ts';
import type { EnvelopeHeader } from '../../agent/envelope/header.ts';

const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const header = { device: 'gw-0001', stream: 's', epoch: unhex('0102030405060708'), seq: 7 } as EnvelopeHeader;

test('a "__proto__" key is kept as an own key, never becomes the prototype, and is written as such', () => {
  // [{"__proto__": {"admin": true}, "n": 1}]
  const [record] = decodeRecords(unhex('81a2695f5f70726f746f5f5fa16561646d696ef5616e01'));
  assert.ok(record);
  assert.equal(Object.getPrototypeOf(record), Object.prototype);
  assert.deepEqual(Object.keys(record), ['__proto__', 'n']);
  assert.equal(({} as { admin?: unknown }).admin, undefined, 'no pollution');
  assert.equal((record as { admin?: unknown }).admin, undefined);
  const line = JSON.parse(toJsonLines(header, [record])) as Record<string, unknown>;
  assert.equal(
    toJsonLines(header, [record]),
    '{"device":"gw-0001","stream":"s","epoch":"0102030405060708","seq":7,"record":{"__proto__":{"admin":true},"n":1}}\n',
  );
  assert.deepEqual(Object.keys(line.record as object), ['__proto__', 'n']);
  // And a record that holds such a key (JSON.parse makes an own "__proto__") goes out with it.
  const again = decodeRecords(encodeRecords([JSON.parse('{"__proto__": 5, "n": 2}') as Record<string, unknown>]));
  assert.equal(toJsonLines(header, again), '{"device":"gw-0001","stream":"s","epoch":"0102030405060708","seq":7,"record":{"__proto__":5,"n":2}}\n');
});

test('the nesting limit is the same for the encoder (record dropped at ingest) and the decoder', () => {
  const nested = (levels: number): Record<string, unknown> => {
    let value: unknown = 1;
    for (let i = 1; i < levels; i++) value = [value];
    return { v: value };
  };
  // The batch array is level 1 and the record level 2: a record of MAX_NESTING - 1 levels is the deepest.
  const deepest = encodeRecords([nested(MAX_NESTING - 1)]);
  assert.equal(decodeRecords(deepest).length, 1);
  assert.throws(
    () => encodeRecords([nested(MAX_NESTING)]),
    (err: unknown) => isAgentError(err, 'RECORD_INVALID'),
  );
  const tooDeep = unhex(`81a16176${'81'.repeat(MAX_NESTING - 1)}01`);
  assert.throws(
    () => decodeRecords(tooDeep),
    (err: unknown) => isAgentError(err, 'ENVELOPE_MALFORMED') && err.details?.reason === 'too-deep',
  );
});

test('strict text decoding rejects invalid UTF-8; the queue reading its own old chunks replaces it', () => {
  const oldChunk = unhex('81a1617364' + '61eda080'); // "a" + the 3-byte form of U+D800, as cbor-x wrote it
  assert.throws(
    () => decodeRecords(oldChunk),
    (err: unknown) => isAgentError(err, 'ENVELOPE_MALFORMED') && err.details?.reason === 'invalid-utf8',
  );
  assert.deepEqual(decodeRecords(oldChunk, { text: 'replace' }), [{ s: 'a\ufffd\ufffd\ufffd' }]);
});

test('header checks run front to back: magic, then version, then the rest', () => {
  const code = (hex: string) => {
    try {
      decodeHeader(unhex(hex));
    } catch (err) {
      return isAgentError(err) ? `${err.code}/${String(err.details?.reason)}` : String(err);
    }
    return 'ok';
  };
  assert.equal(code(''), 'ENVELOPE_MALFORMED/truncated-header');
  assert.equal(code('45'), 'ENVELOPE_MALFORMED/truncated-header');
  assert.equal(code('46'), 'ENVELOPE_MALFORMED/bad-magic');
  assert.equal(code('4541'), 'ENVELOPE_MALFORMED/truncated-header');
  assert.equal(code('454102'), 'ENVELOPE_UNSUPPORTED/version');
  assert.equal(code('4541ff09'), 'ENVELOPE_UNSUPPORTED/version');
  assert.equal(code('454101'), 'ENVELOPE_MALFORMED/truncated-header');
  assert.equal(code('45410104'), 'ENVELOPE_MALFORMED/bad-compression');
  assert.equal(code('4541010000'), 'ENVELOPE_MALFORMED/empty-name');
});
