/**
 * What the centre does with envelopes that are not what a known device sealed: every kind is rejected with
 * its own code, nothing reaches the output, and the receiver goes on accepting good batches afterwards.
 */
import { randomBytes } from 'node:crypto';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { compress, decompress, encodeRecords, type Compression } from '../../agent/envelope/codec.ts';
import type { EnvelopeHeader } from '../../agent/envelope/header.ts';
import { open, seal, TAG_BYTES } from '../../agent/envelope/seal.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { libsodiumReference } from '../../scripts/lib/libsodium-reference.ts';
import { isAgentError, type ErrorCode } from '../../agent/errors.ts';
import { silentLogger } from '../../agent/log.ts';
import { deviceSendKey, keyId, type KeyPair } from '../../agent/keys/keys.ts';
import { DedupState } from '../../agent/receiver/dedup.ts';
import type { RecordOutput } from '../../agent/receiver/output.ts';
import { Receiver } from '../../agent/receiver/receiver.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';

const reference = await libsodiumReference();
const seeded = (b: number): KeyPair => reference.crypto_kx_seed_keypair(new Uint8Array(32).fill(b));
const device1 = seeded(1);
const device2 = seeded(2);
const rogue = seeded(3); // known to nobody
const centre = seeded(10);
const otherCentre = seeded(11); // a centre key this receiver does not hold
const DEDUP_WINDOW = 100;
// Header length for device "gw-0001" and stream "telemetry", from the table in docs/wire-format.md:
// magic, version, compression, device length + 7, stream length + 9, epoch, seq, count, created, two key ids, nonce.
const HEADER_LENGTH = 2 + 1 + 1 + (1 + 7) + (1 + 9) + 8 + 8 + 4 + 8 + 8 + 8 + 24;
/** The device queue's epoch; EPOCH_2 is the queue that replaced it (new SD card, quarantined file). */
const EPOCH_1 = Uint8Array.from([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
const EPOCH_2 = Uint8Array.from([0x8a, 0x01, 0xf3, 0x5c, 0x90, 0x2e, 0xd4, 0x67]);
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const MAX_BATCH_BYTES = 1 << 20;

let dir: string;
let dedup: DedupState;
const written: { header: EnvelopeHeader; records: AgentRecord[] }[] = [];
let receiver: Receiver;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-agent-tamper-'));
  dedup = new DedupState(join(dir, 'receiver.db'), DEDUP_WINDOW);
  const output: RecordOutput = {
    write: async (header, records) => {
      written.push({ header, records });
    },
    close: async () => {},
  };
  receiver = new Receiver(
    x25519,
    [centre],
    [
      { id: 'gw-0001', publicKeys: [device1.publicKey] },
      { id: 'gw-0002', publicKeys: [device2.publicKey] },
    ],
    dedup,
    output,
    silentLogger,
    MAX_BATCH_BYTES,
    // Room for the ~1 MiB decompression bomb below: that test is about the decompression limit.
    { maxEnvelopeBytes: 4 * MAX_BATCH_BYTES },
  );
});

after(() => {
  dedup.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Spec {
  device?: string;
  stream?: string;
  /** Queue epoch; EPOCH_1 unless given. */
  epoch?: Uint8Array;
  seq: number;
  records?: AgentRecord[];
  /** Header count; defaults to the number of records. */
  count?: number;
  compression?: Compression;
  /** Already compressed body, instead of the records'. */
  body?: Uint8Array;
  /** Who seals (session key) and which key ids the header names. */
  sealer?: KeyPair;
  claimedDeviceKey?: KeyPair;
  centreKey?: KeyPair;
}

function envelope(s: Spec): Uint8Array {
  const records = s.records ?? [{ n: s.seq, ts: 1767225600000, value: 21.5 }];
  const compression = s.compression ?? 'deflate';
  const sealer = s.sealer ?? device1;
  const centreKey = s.centreKey ?? centre;
  const header: EnvelopeHeader = {
    device: s.device ?? 'gw-0001',
    stream: s.stream ?? 'telemetry',
    epoch: s.epoch ?? EPOCH_1,
    seq: s.seq,
    count: s.count ?? records.length,
    created: 1767225600000 + s.seq,
    compression,
    deviceKeyId: keyId((s.claimedDeviceKey ?? sealer).publicKey),
    centreKeyId: keyId(centreKey.publicKey),
    nonce: new Uint8Array(randomBytes(24)),
  };
  const body = s.body ?? compress(encodeRecords(records), { compression, level: undefined });
  return seal(header, body, deviceSendKey(x25519, sealer, centreKey.publicKey));
}

let goodSeq = 1_000_000;

/** A fresh good batch is written and counted: the receiver is still working. */
async function assertStillAccepts(after: string): Promise<void> {
  const seq = ++goodSeq;
  const before = receiver.stats();
  const n = written.length;
  await receiver.handle({ bytes: envelope({ seq, stream: 'good' }), origin: 'test/gw-0001/good' });
  assert.equal(receiver.stats().accepted, before.accepted + 1, `good batch not accepted after ${after}`);
  assert.equal(written.length, n + 1);
  assert.equal(written[n]!.header.seq, seq);
  assert.deepEqual(written[n]!.records, [{ n: seq, ts: 1767225600000, value: 21.5 }]);
}

/** The message is rejected with exactly one of `codes`, nothing is written, and the receiver goes on. */
async function assertRejected(bytes: Uint8Array, codes: ErrorCode | ErrorCode[], what: string): Promise<ErrorCode> {
  const allowed = Array.isArray(codes) ? codes : [codes];
  const before = receiver.stats();
  const n = written.length;
  await receiver.handle({ bytes, origin: 'test' });
  const after = receiver.stats();
  const changed = Object.keys(after.rejected).filter((code) => after.rejected[code] !== before.rejected[code]);
  assert.equal(
    changed.length,
    1,
    `${what}: expected one rejection among ${allowed.join('/')}, stats went from ${JSON.stringify(before)} to ${JSON.stringify(after)}`,
  );
  const code = changed[0] as ErrorCode;
  assert.ok(allowed.includes(code), `${what}: rejected as ${code}, expected ${allowed.join(' or ')}`);
  assert.equal(after.rejected[code], (before.rejected[code] ?? 0) + 1);
  assert.equal(after.accepted, before.accepted, `${what}: accepted`);
  assert.equal(after.duplicates + after.stale, before.duplicates + before.stale);
  assert.equal(written.length, n, `${what}: records reached the output`);
  await assertStillAccepts(what);
  return code;
}

function flip(bytes: Uint8Array, position: number, bit: number): Uint8Array {
  const out = bytes.slice();
  out[position]! ^= 1 << bit;
  return out;
}

test('the base envelope of the bit-flip tests is accepted unmodified', async () => {
  const before = receiver.stats().accepted;
  await receiver.handle({ bytes: envelope({ seq: 1 }), origin: 'test' });
  assert.equal(receiver.stats().accepted, before + 1);
});

test('a flipped bit in every header byte is rejected, with the code its field implies', async () => {
  const base = envelope({ seq: 500, compression: 'deflate' });
  // Offsets from docs/wire-format.md for device "gw-0001" (7 bytes) and stream "telemetry" (9 bytes).
  const deviceLen = 7;
  const streamLen = 9;
  const at = { device: 5, streamLength: 5 + deviceLen, stream: 6 + deviceLen } as const;
  const epochAt = at.stream + streamLen;
  const seqAt = epochAt + 8;
  const countAt = seqAt + 8;
  const createdAt = countAt + 4;
  const deviceKeyAt = createdAt + 8;
  const centreKeyAt = deviceKeyAt + 8;
  const nonceAt = centreKeyAt + 8;
  const headerLength = nonceAt + 24;
  assert.equal(headerLength, HEADER_LENGTH);
  // A u64 whose bit 53 or above is set no longer fits a safe integer: the header refuses to parse it.
  const u64Code = (offset: number, bit: number): ErrorCode => ((7 - offset) * 8 + bit >= 53 ? 'ENVELOPE_MALFORMED' : 'ENVELOPE_AUTH_FAILED');
  const expected = (p: number, bit: number): ErrorCode | ErrorCode[] => {
    if (p <= 1) return 'ENVELOPE_MALFORMED'; // magic
    if (p === 2) return 'ENVELOPE_UNSUPPORTED'; // version
    if (p === 3) return bit <= 1 ? 'ENVELOPE_AUTH_FAILED' : 'ENVELOPE_MALFORMED'; // deflate (1) → none (0) / zstd (3); else no such id
    // A changed length shifts every later field: the parse fails or finds no key under the shifted ids.
    if (p === 4 || p === at.streamLength) return ['ENVELOPE_MALFORMED', 'ENVELOPE_UNKNOWN_KEY'];
    // ASCII with its top bit set is a lone non-UTF-8 byte; any other flip names another (unknown) device.
    if (p < at.streamLength) return bit === 7 ? 'ENVELOPE_MALFORMED' : 'ENVELOPE_UNKNOWN_KEY';
    if (p < epochAt) return bit === 7 ? 'ENVELOPE_MALFORMED' : 'ENVELOPE_AUTH_FAILED'; // stream is not part of the key lookup
    if (p < seqAt) return 'ENVELOPE_AUTH_FAILED'; // epoch: any 8 bytes parse, only the tag can tell
    if (p < countAt) return u64Code(p - seqAt, bit);
    if (p < createdAt) return 'ENVELOPE_AUTH_FAILED';
    if (p < deviceKeyAt) return u64Code(p - createdAt, bit);
    if (p < nonceAt) return 'ENVELOPE_UNKNOWN_KEY'; // device or centre key id
    return 'ENVELOPE_AUTH_FAILED'; // nonce
  };
  assert.equal(
    open(base, () => deviceSendKey(x25519, device1, centre.publicKey)).body.length + TAG_BYTES,
    base.length - headerLength,
    'header length as the spec computes it',
  );
  const seen = new Map<ErrorCode, number>();
  for (let p = 0; p < headerLength; p++) {
    for (let bit = 0; bit < 8; bit++) {
      const code = await assertRejected(flip(base, p, bit), expected(p, bit), `header byte ${p} bit ${bit}`);
      seen.set(code, (seen.get(code) ?? 0) + 1);
    }
  }
  // The epoch bytes in particular: every one of their 64 bits is covered by the tag.
  for (let p = epochAt; p < seqAt; p++) assert.equal(base[p], EPOCH_1[p - epochAt], 'epoch where the spec puts it');
  // Every class of failure was exercised, not just one.
  assert.deepEqual([...seen.keys()].sort(), ['ENVELOPE_AUTH_FAILED', 'ENVELOPE_MALFORMED', 'ENVELOPE_UNKNOWN_KEY', 'ENVELOPE_UNSUPPORTED']);
});

test('a flipped bit in the ciphertext or the tag fails authentication', async () => {
  const base = envelope({ seq: 501, records: Array.from({ length: 20 }, (_, n) => ({ n, value: n / 4 })) });
  const tagAt = base.length - TAG_BYTES;
  const bodyAt = HEADER_LENGTH;
  for (const p of [bodyAt, bodyAt + 1, Math.floor((bodyAt + tagAt) / 2), tagAt - 1, tagAt, tagAt + 7, base.length - 1]) {
    for (let bit = 0; bit < 8; bit++) await assertRejected(flip(base, p, bit), 'ENVELOPE_AUTH_FAILED', `byte ${p} bit ${bit}`);
  }
});

test('truncated or extended envelopes are rejected', async () => {
  const base = envelope({ seq: 502 });
  const headerLength = HEADER_LENGTH;
  for (const length of [0, 1, 2, 4, 5, 6, 12, 30, headerLength - 24, headerLength - 1, headerLength, headerLength + 1, headerLength + TAG_BYTES - 1]) {
    await assertRejected(base.subarray(0, length), 'ENVELOPE_MALFORMED', `truncated to ${length}`);
  }
  for (const length of [headerLength + TAG_BYTES, base.length - TAG_BYTES, base.length - 1]) {
    await assertRejected(base.subarray(0, length), 'ENVELOPE_AUTH_FAILED', `truncated to ${length}`);
  }
  await assertRejected(new Uint8Array([...base, 0]), 'ENVELOPE_AUTH_FAILED', 'one byte appended');
});

test('a batch for a centre key this receiver does not hold is rejected as an unknown key', async () => {
  await assertRejected(envelope({ seq: 503, centreKey: otherCentre }), 'ENVELOPE_UNKNOWN_KEY', 'other centre');
});

test('an unknown device is rejected as an unknown key', async () => {
  await assertRejected(envelope({ seq: 504, device: 'gw-9999', sealer: rogue }), 'ENVELOPE_UNKNOWN_KEY', 'unknown device');
  // Even with a key the receiver knows, under another device's id.
  await assertRejected(envelope({ seq: 505, device: 'gw-9999', sealer: device1 }), 'ENVELOPE_UNKNOWN_KEY', 'unknown device id, known key');
});

test('a batch sealed with another key but claiming a known device is rejected', async () => {
  // Its own key id: no such key for gw-0001.
  await assertRejected(envelope({ seq: 506, sealer: rogue }), 'ENVELOPE_UNKNOWN_KEY', 'rogue key, own key id');
  // gw-0001's key id (it is public): the receiver uses gw-0001's session key and the tag does not verify.
  await assertRejected(envelope({ seq: 507, sealer: rogue, claimedDeviceKey: device1 }), 'ENVELOPE_AUTH_FAILED', 'rogue key, claimed key id');
  // A known device cannot speak for another one either.
  await assertRejected(envelope({ seq: 508, sealer: device2 }), 'ENVELOPE_UNKNOWN_KEY', 'gw-0002 key as gw-0001');
  await assertRejected(envelope({ seq: 509, sealer: device2, claimedDeviceKey: device1 }), 'ENVELOPE_AUTH_FAILED', 'gw-0002 key, gw-0001 key id');
  // While gw-0002 under its own id is accepted.
  const before = receiver.stats().accepted;
  await receiver.handle({ bytes: envelope({ seq: 509, device: 'gw-0002', sealer: device2 }), origin: 'test' });
  assert.equal(receiver.stats().accepted, before + 1);
  assert.equal(written.at(-1)!.header.device, 'gw-0002');
});

test('a replayed sequence is dropped as a duplicate and counted, even re-sealed with a new nonce', async () => {
  const bytes = envelope({ seq: 600, stream: 'replay' });
  await receiver.handle({ bytes, origin: 'test' });
  const before = receiver.stats();
  const n = written.length;
  assert.equal(written[n - 1]!.header.seq, 600);
  await receiver.handle({ bytes, origin: 'test' });
  await receiver.handle({ bytes: envelope({ seq: 600, stream: 'replay' }), origin: 'test' });
  const after = receiver.stats();
  assert.equal(after.duplicates, before.duplicates + 2);
  assert.equal(after.accepted, before.accepted);
  assert.deepEqual(after.rejected, before.rejected);
  assert.equal(written.length, n);
  // The same sequence on another stream is another batch.
  await receiver.handle({ bytes: envelope({ seq: 600, stream: 'replay-2' }), origin: 'test' });
  assert.equal(receiver.stats().accepted, before.accepted + 1);
  await assertStillAccepts('duplicates');
});

test('a sequence dedup_window or more behind the newest of its stream is counted as stale', async () => {
  await receiver.handle({ bytes: envelope({ seq: 1000, stream: 'window' }), origin: 'test' });
  const before = receiver.stats();
  const n = written.length;
  await receiver.handle({ bytes: envelope({ seq: 1000 - DEDUP_WINDOW, stream: 'window' }), origin: 'test' });
  await receiver.handle({ bytes: envelope({ seq: 3, stream: 'window' }), origin: 'test' });
  assert.equal(receiver.stats().stale, before.stale + 2);
  assert.equal(receiver.stats().accepted, before.accepted);
  assert.equal(written.length, n);
  // One inside the window, never seen, is still taken: late batches within the window are not lost.
  await receiver.handle({ bytes: envelope({ seq: 1000 - DEDUP_WINDOW + 1, stream: 'window' }), origin: 'test' });
  assert.equal(receiver.stats().accepted, before.accepted + 1);
  assert.equal(receiver.stats().stale, before.stale + 2);
  await assertStillAccepts('stale');
});

test('the same (device, stream, seq) under another queue epoch is a new batch; under the same epoch a duplicate', async () => {
  const before = receiver.stats();
  const n = written.length;
  // The first queue sends seq 1 and 2; then it is replaced and the new one numbers from 1 again.
  await receiver.handle({ bytes: envelope({ seq: 1, stream: 'epochs', epoch: EPOCH_1 }), origin: 'test' });
  await receiver.handle({ bytes: envelope({ seq: 2, stream: 'epochs', epoch: EPOCH_1 }), origin: 'test' });
  await receiver.handle({ bytes: envelope({ seq: 1, stream: 'epochs', epoch: EPOCH_2 }), origin: 'test' });
  await receiver.handle({ bytes: envelope({ seq: 2, stream: 'epochs', epoch: EPOCH_2 }), origin: 'test' });
  assert.equal(receiver.stats().accepted, before.accepted + 4, 'a replaced queue restarting at 1 is not taken for replays');
  assert.equal(receiver.stats().duplicates, before.duplicates);
  assert.deepEqual(
    written.slice(n).map((w) => `${hexOf(w.header.epoch)}#${w.header.seq}`),
    [`${hexOf(EPOCH_1)}#1`, `${hexOf(EPOCH_1)}#2`, `${hexOf(EPOCH_2)}#1`, `${hexOf(EPOCH_2)}#2`],
  );
  // Re-sends (fresh nonce each time, as the agent seals) of either epoch's batches are duplicates.
  for (const epoch of [EPOCH_1, EPOCH_2]) {
    for (const seq of [1, 2]) await receiver.handle({ bytes: envelope({ seq, stream: 'epochs', epoch }), origin: 'test' });
  }
  assert.equal(receiver.stats().duplicates, before.duplicates + 4);
  assert.equal(receiver.stats().accepted, before.accepted + 4);
  assert.equal(written.length, n + 4);
  // The epoch belongs to (device, stream): gw-0002 with the same epoch bytes and seq is its own batch.
  await receiver.handle({ bytes: envelope({ seq: 1, stream: 'epochs', epoch: EPOCH_1, device: 'gw-0002', sealer: device2 }), origin: 'test' });
  assert.equal(receiver.stats().accepted, before.accepted + 5);
  await assertStillAccepts('epochs');
});

test('the dedup window is per epoch: a new epoch starting at 1 is not stale behind the old one', async () => {
  await receiver.handle({ bytes: envelope({ seq: 5000, stream: 'epoch-window', epoch: EPOCH_1 }), origin: 'test' });
  const before = receiver.stats();
  // Behind the old epoch's newest by more than the window: stale there…
  await receiver.handle({ bytes: envelope({ seq: 3, stream: 'epoch-window', epoch: EPOCH_1 }), origin: 'test' });
  assert.equal(receiver.stats().stale, before.stale + 1);
  // …and new under the new epoch, whose own window starts from its own newest.
  await receiver.handle({ bytes: envelope({ seq: 3, stream: 'epoch-window', epoch: EPOCH_2 }), origin: 'test' });
  await receiver.handle({ bytes: envelope({ seq: 1, stream: 'epoch-window', epoch: EPOCH_2 }), origin: 'test' });
  assert.equal(receiver.stats().accepted, before.accepted + 2);
  await receiver.handle({ bytes: envelope({ seq: 3 + DEDUP_WINDOW, stream: 'epoch-window', epoch: EPOCH_2 }), origin: 'test' });
  await receiver.handle({ bytes: envelope({ seq: 2, stream: 'epoch-window', epoch: EPOCH_2 }), origin: 'test' });
  assert.equal(receiver.stats().stale, before.stale + 2, 'the new epoch has its own window');
  // The old epoch's window did not move: a late batch inside it is still taken.
  await receiver.handle({ bytes: envelope({ seq: 5000 - DEDUP_WINDOW + 1, stream: 'epoch-window', epoch: EPOCH_1 }), origin: 'test' });
  assert.equal(receiver.stats().accepted, before.accepted + 4);
  await assertStillAccepts('epoch window');
});

test('dedup state keys on (device, stream, epoch, seq), and keeps the highest per epoch across a restart', () => {
  const path = join(dir, 'epochs.db');
  const a = hexOf(EPOCH_1);
  const b = hexOf(EPOCH_2);
  const state = new DedupState(path, 10);
  assert.equal(state.check('gw-0001', 'telemetry', a, 50), 'new');
  state.mark('gw-0001', 'telemetry', a, 50, 3);
  assert.equal(state.check('gw-0001', 'telemetry', a, 50), 'duplicate');
  assert.equal(state.check('gw-0001', 'telemetry', b, 50), 'new');
  assert.equal(state.check('gw-0001', 'telemetry', a, 40), 'stale');
  assert.equal(state.check('gw-0001', 'telemetry', b, 1), 'new');
  state.mark('gw-0001', 'telemetry', b, 1, 1);
  state.close();
  const reopened = new DedupState(path, 10);
  try {
    assert.equal(reopened.check('gw-0001', 'telemetry', a, 50), 'duplicate');
    assert.equal(reopened.check('gw-0001', 'telemetry', a, 40), 'stale');
    assert.equal(reopened.check('gw-0001', 'telemetry', a, 41), 'new');
    assert.equal(reopened.check('gw-0001', 'telemetry', b, 1), 'duplicate');
    assert.equal(reopened.check('gw-0001', 'telemetry', b, 2), 'new');
    assert.equal(reopened.check('gw-0001', 'other', a, 50), 'new');
  } finally {
    reopened.close();
  }
});

test('a header count that disagrees with the records is rejected', async () => {
  const records = [{ n: 1 }, { n: 2 }];
  await assertRejected(envelope({ seq: 700, records, count: 3 }), 'ENVELOPE_MALFORMED', 'count 3, 2 records');
  await assertRejected(envelope({ seq: 701, records, count: 1 }), 'ENVELOPE_MALFORMED', 'count 1, 2 records');
  await assertRejected(envelope({ seq: 702, records, count: 0 }), 'ENVELOPE_MALFORMED', 'count 0, 2 records');
});

test('an authentic body that is not a CBOR array of records, or not in the named compression, is rejected', async () => {
  await assertRejected(
    envelope({ seq: 710, compression: 'none', body: new Uint8Array([0xa1, 0x61, 0x61, 0x01]), count: 1 }),
    'ENVELOPE_MALFORMED',
    'CBOR map body',
  );
  await assertRejected(envelope({ seq: 711, compression: 'none', body: new Uint8Array([0x82, 0x01]), count: 2 }), 'ENVELOPE_MALFORMED', 'truncated CBOR');
  await assertRejected(
    envelope({ seq: 712, compression: 'zstd', body: compress(encodeRecords([{ n: 1 }]), { compression: 'deflate', level: undefined }) }),
    'ENVELOPE_MALFORMED',
    'deflate body labelled zstd',
  );
});

/** A raw deflate stream of `mib` MiB of zeros, built from one flushed MiB repeated: ~1 KiB per MiB. */
function deflateBomb(mib: number): Uint8Array {
  const oneMiB = zlib.deflateRawSync(Buffer.alloc(1 << 20), { level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const end = zlib.deflateRawSync(Buffer.alloc(0)); // an empty final block
  return new Uint8Array(Buffer.concat([...Array<Buffer>(mib).fill(oneMiB), end]));
}

test('a decompression bomb is stopped at maxBatchBytes without inflating it', async () => {
  // The construction is a valid stream that inflates to exactly what it says.
  assert.equal(zlib.inflateRawSync(deflateBomb(3)).length, 3 << 20);

  const bomb = deflateBomb(1024); // ~1 MiB that inflates to 1 GiB
  assert.ok(bomb.length < 1.1 * (1 << 20));
  const direct = (() => {
    try {
      decompress(bomb, 'deflate', MAX_BATCH_BYTES);
    } catch (err) {
      return err;
    }
    return undefined;
  })();
  assert.ok(isAgentError(direct, 'ENVELOPE_MALFORMED'));
  assert.equal((direct.cause as { code?: string }).code, 'ERR_BUFFER_TOO_LARGE', 'stopped by the output limit, not by bad data');

  // The peak resident size is monotonic: had the gigabyte been inflated, it would show here.
  const peakBefore = process.resourceUsage().maxRSS * 1024;
  await assertRejected(envelope({ seq: 800, body: bomb, compression: 'deflate', count: 1 }), 'ENVELOPE_MALFORMED', 'deflate bomb');
  const growth = process.resourceUsage().maxRSS * 1024 - peakBefore;
  assert.ok(growth < 256 * (1 << 20), `peak memory grew by ${Math.round(growth / (1 << 20))} MiB`);
});

test('brotli and zstd bodies are held to the same limit', async () => {
  // A well-formed batch of one record whose CBOR is 8 × the limit: only the limit can refuse it.
  const cbor = encodeRecords([{ zeros: new Uint8Array(8 * MAX_BATCH_BYTES) }]);
  let seq = 810;
  for (const compression of ['brotli', 'zstd'] as const) {
    const body = compress(cbor, { compression, level: undefined });
    assert.ok(body.length < 64 * 1024, `${compression} bomb is small (${body.length} bytes)`);
    assert.equal(decompress(body, compression, cbor.length).length, cbor.length);
    assert.throws(
      () => decompress(body, compression, MAX_BATCH_BYTES),
      (err: unknown) => isAgentError(err, 'ENVELOPE_MALFORMED') && (err.cause as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE',
    );
    await assertRejected(envelope({ seq: seq++, body, compression, count: 1 }), 'ENVELOPE_MALFORMED', `${compression} bomb`);
  }
});
