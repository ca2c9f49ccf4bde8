/**
 * The mqtt source's payload decoding (drivers/sources/mqtt/payload.ts) in every format. Properties: it never
 * throws; `auto`, `text` and `bytes` always give fields, `json` gives fields or `bad_json`; the fields are a
 * plain object; and the record they make can be encoded by the queue (so one message cannot be a record the
 * queue drops), checked by encoding it as the queue does.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeRecords } from '../../../agent/envelope/codec.ts';
import { isAgentError } from '../../../agent/errors.ts';
import { decodePayload, type PayloadFormat } from '../../../drivers/sources/mqtt/payload.ts';
import type { CorpusEntry } from '../lib/corpus.ts';
import { mutatedBytes } from '../lib/mutate.ts';
import type { Findings, FuzzTarget } from '../lib/run.ts';

const FORMATS: readonly PayloadFormat[] = ['auto', 'json', 'text', 'bytes'];

function check(payload: Uint8Array, _findings: Findings): void {
  for (const format of FORMATS) {
    const copy = new Uint8Array(payload);
    const r = decodePayload(copy, format);
    if (!r.ok) {
      assert.equal(format, 'json', `format ${format} rejected a payload`);
      assert.equal(r.reason, 'bad_json');
      continue;
    }
    assert.ok(typeof r.fields === 'object' && r.fields !== null && !Array.isArray(r.fields), `format ${format}: fields are not an object`);
    if (format === 'bytes') assert.deepEqual(r.fields.payload, payload);
    copy.fill(0); // the source's buffer is reused: the record must not share it
    if (format === 'bytes' || (format === 'auto' && r.fields.payload instanceof Uint8Array))
      assert.deepEqual(r.fields.payload, payload, 'fields share the payload buffer');
    try {
      encodeRecords([{ ts: 1, ...r.fields }]);
    } catch (err) {
      // Deeply nested JSON decodes into a record deeper than the wire format allows: the encoder refuses it
      // with RECORD_INVALID and the queue drops it, counted as invalid. Any other failure is a bug.
      assert.ok(isAgentError(err, 'RECORD_INVALID'), `format ${format}: ${(err as Error).name}: ${(err as Error).message}`);
    }
  }
}

/** JSON nested `depth` deep: the one way a small payload becomes a record too deep to encode. */
const deep = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"a":'))
  .map(([depth, open]) => new Uint8Array(Buffer.from(`${open.repeat(depth)}1${(open === '[' ? ']' : '}').repeat(depth)}`)));

export const payloadTarget: FuzzTarget<Uint8Array> = {
  name: 'payload',
  limits: { msPerInput: 5000, bytesPerInput: 64 * 2 ** 20 },
  fromCorpus: (entries: readonly CorpusEntry[]) => entries.map((e) => new Uint8Array(e.bytes)),
  arbitrary: (entries) =>
    fc.oneof(
      { weight: 5, arbitrary: mutatedBytes(entries.map((e) => new Uint8Array(e.bytes))) },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }) },
      { weight: 2, arbitrary: fc.json().map((j) => new Uint8Array(Buffer.from(j))) },
      { weight: 1, arbitrary: deep },
    ),
  check,
  toFile: (bytes) => ({ ext: 'bin', bytes }),
  describe: (bytes) => `${bytes.length} bytes: ${JSON.stringify(Buffer.from(bytes.subarray(0, 120)).toString('latin1'))}`,
};
