/**
 * The edge-case sections of test/vectors/envelope-v1.json ("decoding" and "rejections", written by
 * scripts/make-vectors.ts from scripts/vectors/edge-cases.ts): the receiver must decode each "decoding" envelope
 * to its "output" and reject each "rejections" envelope with its code, and this implementation with its reason.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeRecords, decompress, encodeRecords, type EncodeStats } from '../../agent/envelope/codec.ts';
import { malformedReason } from '../../agent/envelope/malformed.ts';
import type { EnvelopeHeader } from '../../agent/envelope/header.ts';
import { open } from '../../agent/envelope/seal.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { AgentError, isAgentError } from '../../agent/errors.ts';
import { hex, keyId } from '../../agent/keys/keys.ts';
import { silentLogger } from '../../agent/log.ts';
import { DedupState } from '../../agent/receiver/dedup.ts';
import { DEFAULT_RECEIVER_LIMITS } from '../../agent/envelope/limits.ts';
import { toJsonLines, type RecordOutput } from '../../agent/receiver/output.ts';
import { Receiver } from '../../agent/receiver/receiver.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';
import { makeVectors } from '../../scripts/make-vectors.ts';

interface Decoding {
  name: string;
  inputRecords?: AgentRecord[];
  seq: number;
  count: number;
  cbor: string;
  envelope: string;
  output: unknown[];
}
interface Rejection {
  name: string;
  envelope: string;
  maxBatchBytes?: number;
  maxRecords?: number;
  maxEnvelopeBytes?: number;
  error: string;
  reason: string | null;
}
interface VectorFile {
  keys: { device: { privateKey: string; publicKey: string }; centre: { privateKey: string; publicKey: string }; sessionKey: string };
  decoding: Decoding[];
  rejections: Rejection[];
}

const file = JSON.parse(readFileSync(new URL('../vectors/envelope-v1.json', import.meta.url), 'utf8')) as VectorFile;
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const centre = { privateKey: unhex(file.keys.centre.privateKey), publicKey: unhex(file.keys.centre.publicKey) };
const devicePublic = unhex(file.keys.device.publicKey);
const sessionKey = unhex(file.keys.sessionKey);
const DEFAULT_LIMIT = 1 << 20;

let dir: string;
let dedup: DedupState;
const written: { header: EnvelopeHeader; records: AgentRecord[] }[] = [];
const output: RecordOutput = {
  write: async (header, records) => {
    written.push({ header, records });
  },
  close: async () => {},
};
/** The receiver limits a vector asks for; the defaults where it names none. */
interface Limits {
  maxBatchBytes: number;
  maxRecords: number;
  maxEnvelopeBytes: number;
}
const DEFAULT_LIMITS: Limits = { maxBatchBytes: DEFAULT_LIMIT, maxRecords: DEFAULT_RECEIVER_LIMITS.maxRecords, maxEnvelopeBytes: DEFAULT_LIMIT };
const receivers = new Map<string, Receiver>();
const receiver = (limits: Limits): Receiver => {
  const key = JSON.stringify(limits);
  let r = receivers.get(key);
  if (!r) {
    const devices = [{ id: 'gw-0001', publicKeys: [devicePublic] }];
    const options = { maxEnvelopeBytes: limits.maxEnvelopeBytes, limits: { maxRecords: limits.maxRecords } };
    r = new Receiver(x25519, [centre], devices, dedup, output, silentLogger, limits.maxBatchBytes, options);
    receivers.set(key, r);
  }
  return r;
};

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-agent-edge-vectors-'));
  dedup = new DedupState(join(dir, 'receiver.db'), 1000);
});
after(() => {
  dedup.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The receiver's steps up to the dedup check, for the error it throws (its code and reason). */
function receiveSteps(bytes: Uint8Array, limits: Limits): AgentRecord[] {
  if (bytes.length > limits.maxEnvelopeBytes) throw new AgentError('ENVELOPE_TOO_LARGE', 'over max_envelope_bytes');
  const opened = open(bytes, (h) => {
    if (h.device !== 'gw-0001' || hex(h.deviceKeyId) !== hex(keyId(devicePublic)) || hex(h.centreKeyId) !== hex(keyId(centre.publicKey))) {
      throw new AgentError('ENVELOPE_UNKNOWN_KEY', 'no such key');
    }
    return sessionKey;
  });
  const body = decompress(opened.body, opened.header.compression, limits.maxBatchBytes);
  const records = decodeRecords(body, { text: 'strict', maxRecords: limits.maxRecords });
  if (records.length !== opened.header.count) throw new AgentError('ENVELOPE_MALFORMED', 'count', { details: { reason: 'count-mismatch' } });
  return records;
}

test('the edge-case sections cover every failure class and every decoding decision', () => {
  const reasons = new Set(file.rejections.map((r) => r.reason));
  for (const reason of [
    'truncated-header',
    'bad-magic',
    'version',
    'bad-compression',
    'empty-name',
    'invalid-utf8',
    'out-of-range',
    'truncated-tag',
    null,
    'decompress-failed',
    'too-large',
    'trailing-compressed',
    'cbor-invalid',
    'trailing-cbor',
    'not-an-array',
    'record-not-map',
    'bad-key',
    'duplicate-key',
    'unsupported-tag',
    'bad-tag-content',
    'too-deep',
    'too-many-records',
    'count-mismatch',
  ]) {
    assert.ok(reasons.has(reason), `a rejection with reason ${reason}`);
  }
  const codes = new Set(file.rejections.map((r) => r.error));
  assert.deepEqual([...codes].sort(), ['ENVELOPE_AUTH_FAILED', 'ENVELOPE_MALFORMED', 'ENVELOPE_TOO_LARGE', 'ENVELOPE_UNKNOWN_KEY', 'ENVELOPE_UNSUPPORTED']);
  assert.deepEqual(
    file.decoding.map((d) => d.name),
    ['dates', 'big-integers', 'floats', 'lone-surrogate-repair', 'general-cbor', 'self-described', 'empty-batch-seq-0'],
  );
});

for (const v of file.decoding) {
  test(`decoding vector ${v.name}: the receiver takes it and writes the expected JSON`, async () => {
    const before = written.length;
    await receiver(DEFAULT_LIMITS).handle({ bytes: unhex(v.envelope), origin: 'vector' });
    assert.equal(written.length, before + 1, 'the batch was written');
    const { header, records } = written[written.length - 1]!;
    assert.equal(header.seq, v.seq);
    assert.equal(header.count, v.count);
    const lines = toJsonLines(header, records)
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { epoch: string; seq: number; record: unknown });
    assert.deepEqual(
      lines.map((l) => l.record),
      v.output,
    );
    for (const line of lines) assert.deepEqual([line.epoch, line.seq], ['3f9a0c7e51d2b864', v.seq]);
    // The body in the vector is the body in the envelope.
    assert.deepEqual(toJsonLines(header, decodeRecords(unhex(v.cbor))), toJsonLines(header, records));
    if (v.inputRecords) {
      const stats: EncodeStats = { repaired: 0 };
      assert.equal(hex(encodeRecords(structuredClone(v.inputRecords), stats)), v.cbor);
      assert.equal(stats.repaired, v.inputRecords.length);
    }
  });
}

for (const v of file.rejections) {
  test(`rejection vector ${v.name}: ${v.error}${v.reason ? ` (${v.reason})` : ''}`, async () => {
    const limits: Limits = {
      maxBatchBytes: v.maxBatchBytes ?? DEFAULT_LIMITS.maxBatchBytes,
      maxRecords: v.maxRecords ?? DEFAULT_LIMITS.maxRecords,
      maxEnvelopeBytes: v.maxEnvelopeBytes ?? DEFAULT_LIMITS.maxEnvelopeBytes,
    };
    const bytes = unhex(v.envelope);
    assert.throws(
      () => receiveSteps(bytes, limits),
      (err: unknown) => {
        assert.ok(isAgentError(err), `an AgentError, got ${String(err)}`);
        assert.equal(err.code, v.error);
        if (v.reason !== null) assert.equal(err.details?.reason, v.reason);
        if (v.error === 'ENVELOPE_MALFORMED') assert.equal(malformedReason(err), v.reason);
        return true;
      },
    );
    const r = receiver(limits);
    const rejectedBefore = r.stats().rejected[v.error] ?? 0;
    const writtenBefore = written.length;
    await r.handle({ bytes, origin: 'vector' });
    assert.equal(r.stats().rejected[v.error], rejectedBefore + 1, 'counted under its code');
    assert.equal(written.length, writtenBefore, 'nothing written');
  });
}

test('the edge-case sections are what scripts/make-vectors.ts writes (compressed bodies aside)', async () => {
  const fresh = JSON.parse(JSON.stringify(await makeVectors())) as VectorFile;
  assert.deepEqual(fresh.decoding, file.decoding);
  const portable = (f: VectorFile) => f.rejections.map((r) => (r.envelope.length > 8 && r.envelope.slice(6, 8) !== '00' ? { ...r, envelope: undefined } : r));
  assert.deepEqual(portable(fresh), portable(file));
});
