/**
 * What anyone who can publish on the centre's broker can send, and what the receiver does with it: a message
 * over the size limit is refused before decryption; rejections are counted by reason and logged at a bounded
 * rate with the origin cut short; the dedup state stays bounded; a device key of small order disables only that
 * device; an output that fails stops acknowledging; the state and output files are private.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { compress, encodeRecords } from '../../agent/envelope/codec.ts';
import { encodeHeader, type EnvelopeHeader } from '../../agent/envelope/header.ts';
import { seal } from '../../agent/envelope/seal.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { libsodiumReference } from '../../scripts/lib/libsodium-reference.ts';
import { isAgentError } from '../../agent/errors.ts';
import { silentLogger, type Logger } from '../../agent/log.ts';
import { deviceSendKey, keyId, type KeyPair } from '../../agent/keys/keys.ts';
import { DedupState } from '../../agent/receiver/dedup.ts';
import { loadDevices } from '../../agent/receiver/devices.ts';
import { jsonLinesOutput, type RecordOutput } from '../../agent/receiver/output.ts';
import { Receiver } from '../../agent/receiver/receiver.ts';
import { Telemetry } from '../../agent/telemetry/registry.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';

const reference = await libsodiumReference();
const seeded = (b: number): KeyPair => reference.crypto_kx_seed_keypair(new Uint8Array(32).fill(b));
const device = seeded(1);
const centre = seeded(10);
const EPOCH = new Uint8Array(8).fill(0x42);
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-receiver-hostile-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function header(seq: number, over: Partial<EnvelopeHeader> = {}): EnvelopeHeader {
  return {
    device: 'gw-1',
    stream: 'telemetry',
    epoch: EPOCH,
    seq,
    count: 1,
    created: 1767225600000 + seq,
    compression: 'deflate',
    deviceKeyId: keyId(device.publicKey),
    centreKeyId: keyId(centre.publicKey),
    nonce: new Uint8Array(randomBytes(24)),
    ...over,
  };
}

function envelope(seq: number, records: AgentRecord[] = [{ n: seq }], over: Partial<EnvelopeHeader> = {}): Uint8Array {
  return seal(
    header(seq, { count: records.length, ...over }),
    compress(encodeRecords(records), { compression: 'deflate', level: undefined }),
    deviceSendKey(x25519, device, centre.publicKey),
  );
}

/** A real header (device id and key ids are public) followed by `bytes` of random "ciphertext". */
function forged(bytes: number): Uint8Array {
  const head = encodeHeader(header(1));
  const out = new Uint8Array(head.length + bytes);
  out.set(head, 0);
  out.set(randomBytes(bytes), head.length);
  return out;
}

function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

function makeReceiver(
  name: string,
  options: { maxEnvelopeBytes?: number; log?: Logger; output?: RecordOutput; dedup?: DedupState; telemetry?: Telemetry } = {},
) {
  const written: AgentRecord[][] = [];
  const output: RecordOutput = options.output ?? {
    write: async (_h, records) => {
      written.push(records);
    },
    close: async () => {},
  };
  const dedup = options.dedup ?? new DedupState(join(dir, `${name}.db`), 1000);
  const telemetry = options.telemetry ?? new Telemetry();
  const receiver = new Receiver(x25519, [centre], [{ id: 'gw-1', publicKeys: [device.publicKey] }], dedup, output, options.log ?? silentLogger, 1 << 20, {
    maxEnvelopeBytes: options.maxEnvelopeBytes,
    telemetry,
  });
  return { receiver, written, dedup, telemetry };
}

test('a message over max_envelope_bytes is refused as too large, before any decryption, and counted', async () => {
  const limit = 64 * 1024;
  const { receiver, written, dedup, telemetry } = makeReceiver('size', { maxEnvelopeBytes: limit });
  const head = encodeHeader(header(1)).length;
  await receiver.handle({ bytes: forged(limit + 1 - head), origin: 'edge-agent/v1/gw-1/telemetry' });
  // A genuine batch over the limit too: it is not opened, so it cannot be accepted.
  const big = envelope(2, [{ blob: new Uint8Array(randomBytes(limit)) }]);
  assert.ok(big.length > limit);
  await receiver.handle({ bytes: big, origin: 'edge-agent/v1/gw-1/telemetry' });
  assert.deepEqual(receiver.stats().rejected, { ENVELOPE_TOO_LARGE: 2 });
  assert.equal(written.length, 0);
  // At the limit, the forgery gets as far as authentication, and a good batch is taken.
  await receiver.handle({ bytes: forged(limit - head), origin: 'x' });
  await receiver.handle({ bytes: envelope(3), origin: 'x' });
  assert.deepEqual(receiver.stats().rejected, { ENVELOPE_TOO_LARGE: 2, ENVELOPE_AUTH_FAILED: 1 });
  assert.equal(receiver.stats().accepted, 1);
  const counter = telemetry.get('edge_receiver_rejected_total')!;
  assert.deepEqual(
    counter.samples().map((s) => [s.labels.reason, (s as { value: number }).value]),
    [
      ['ENVELOPE_TOO_LARGE', 2],
      ['ENVELOPE_AUTH_FAILED', 1],
    ],
  );
  dedup.close();
});

test('device keys of small order (all zeros, order 8, p + 1) disable only their device; the good one is taken', async () => {
  const keyFile = (name: string, key: Uint8Array) => {
    const path = join(dir, `${name}.pub`);
    writeFileSync(path, `x25519-public ${Buffer.from(key).toString('base64')}\n`);
    return path;
  };
  const lowOrder = {
    'gw-zero': new Uint8Array(32),
    'gw-order8': new Uint8Array(Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex')),
    'gw-p-plus-1': new Uint8Array(Buffer.from(`ee${'ff'.repeat(30)}ff`, 'hex')),
  };
  const entries = [
    { id: 'gw-1', files: [keyFile('gw-1', device.publicKey)] },
    ...Object.entries(lowOrder).map(([id, key]) => ({ id, files: [keyFile(id, key)] })),
  ];
  const { log, lines } = capturingLogger();
  const telemetry = new Telemetry();
  const devices = loadDevices(x25519, entries, log, telemetry);
  assert.deepEqual(
    devices.map((d) => d.id),
    ['gw-1'],
  );
  const disabled = lines.filter((l) => l.code === 'KEY_INVALID').map((l) => [l.device, /low-order point/.test(String(l.err))]);
  assert.deepEqual(
    disabled,
    Object.keys(lowOrder).map((id) => [id, true]),
  );
  const gauge = telemetry
    .get('edge_receiver_devices')!
    .samples()
    .map((s) => [s.labels.state, (s as { value: number }).value]);
  assert.deepEqual(gauge, [
    ['enabled', 1],
    ['disabled', 3],
  ]);
  // Only low-order keys: nothing could ever be accepted, so the receiver refuses to start.
  assert.throws(
    () => loadDevices(x25519, entries.slice(1), silentLogger, new Telemetry()),
    (err: unknown) => isAgentError(err) && err.code === 'KEY_INVALID' && err.message.includes('gw-zero'),
  );
  const dedup = new DedupState(join(dir, 'low-order.db'), 1000);
  const written: AgentRecord[][] = [];
  const output: RecordOutput = { write: async (_h, records) => void written.push(records), close: async () => {} };
  const receiver = new Receiver(x25519, [centre], devices, dedup, output, silentLogger, 1 << 20, { telemetry });
  await receiver.handle({ bytes: envelope(1), origin: 'edge-agent/v1/gw-1/telemetry' });
  assert.equal(receiver.stats().accepted, 1);
  assert.deepEqual(written, [[{ n: 1 }]]);
  dedup.close();
});

test('a flood of rejections on a huge topic logs a bounded number of short lines and counts every one', async () => {
  const { log, lines } = capturingLogger();
  const { receiver, dedup } = makeReceiver('flood', { log });
  const topic = `edge-agent/v1/${'x'.repeat(60_000)}`;
  for (let i = 0; i < 1000; i++) await receiver.handle({ bytes: new Uint8Array([1, 2, 3, 4]), origin: topic });
  assert.equal(receiver.stats().rejected.ENVELOPE_MALFORMED, 1000);
  const rejected = lines.filter((l) => l.msg === 'batch rejected');
  // The reporter logs a kind at once and then once per 10 s interval: a loop this size fits in a few intervals.
  assert.ok(rejected.length >= 1 && rejected.length <= 3, `${rejected.length} lines logged`);
  for (const line of rejected) {
    assert.ok(JSON.stringify(line).length < 1000, `a logged line of ${JSON.stringify(line).length} chars`);
    assert.match(String(line.origin), /… \(60014 chars\)$/);
  }
  dedup.close();
});

test('the dedup state keeps the newest epochs per stream; a forgotten epoch is never accepted twice', () => {
  const path = join(dir, 'epochs.db');
  let state = new DedupState(path, 1000, { epochs: 2, streamsPerDevice: 10 });
  const e = (n: number) => hexOf(new Uint8Array(8).fill(n));
  // Epoch 1 (created 100–109), then 2 and 3: epoch 1 is forgotten when 3 arrives.
  for (let seq = 1; seq <= 10; seq++) state.mark('gw-1', 's', e(1), seq, 1, 100 + seq);
  state.mark('gw-1', 's', e(2), 1, 1, 200);
  assert.equal(state.check('gw-1', 's', e(1), 5, 105), 'duplicate');
  state.mark('gw-1', 's', e(3), 1, 1, 300);
  assert.deepEqual(state.size(), { epochs: 2, rows: 2 });
  // A replay of anything epoch 1 had accepted is refused: it was created at or before the floor (110).
  for (let seq = 1; seq <= 10; seq++) assert.equal(state.check('gw-1', 's', e(1), seq, 100 + seq), 'stale');
  // Also an unknown epoch whose batch claims an old creation time.
  assert.equal(state.check('gw-1', 's', e(9), 1, 110), 'stale');
  // A batch of epoch 1 created after everything it had accepted was never accepted: taken.
  assert.equal(state.check('gw-1', 's', e(1), 11, 111), 'new');
  // The remembered epochs are untouched.
  assert.equal(state.check('gw-1', 's', e(2), 1, 200), 'duplicate');
  assert.equal(state.check('gw-1', 's', e(3), 2, 301), 'new');
  state.close();
  // Across a restart: floors, epochs and their order are kept.
  state = new DedupState(path, 1000, { epochs: 2, streamsPerDevice: 10 });
  assert.equal(state.check('gw-1', 's', e(1), 10, 110), 'stale');
  assert.equal(state.check('gw-1', 's', e(3), 1, 300), 'duplicate');
  state.mark('gw-1', 's', e(4), 1, 1, 400); // forgets epoch 2, the oldest remembered
  assert.equal(state.check('gw-1', 's', e(2), 1, 200), 'stale');
  assert.equal(state.check('gw-1', 's', e(3), 1, 300), 'duplicate');
  // Many epochs later the state is still two epochs' worth.
  for (let n = 10; n < 60; n++) state.mark('gw-1', 's', e(n), 1, 1, 1000 + n);
  assert.deepEqual(state.size(), { epochs: 2, rows: 2 });
  state.close();
});

test('a device may have at most max_streams_per_device streams; batches on more are refused, the known ones go on', async () => {
  const dedup = new DedupState(join(dir, 'streams.db'), 1000, { epochs: 8, streamsPerDevice: 2 });
  const { receiver, written } = makeReceiver('streams', { dedup });
  await receiver.handle({ bytes: envelope(1, undefined, { stream: 'a' }), origin: 'x' });
  await receiver.handle({ bytes: envelope(1, undefined, { stream: 'b' }), origin: 'x' });
  await receiver.handle({ bytes: envelope(1, undefined, { stream: 'c' }), origin: 'x' });
  await receiver.handle({ bytes: envelope(2, undefined, { stream: 'a' }), origin: 'x' });
  await receiver.handle({ bytes: envelope(1, undefined, { stream: 'b', epoch: new Uint8Array(8).fill(7) }), origin: 'x' });
  assert.equal(receiver.stats().accepted, 4);
  assert.deepEqual(receiver.stats().rejected, { RECEIVER_STREAM_LIMIT: 1 });
  assert.equal(written.length, 4);
  assert.equal(dedup.check('gw-1', 'c', hexOf(EPOCH), 1), 'stream_limit');
  dedup.close();
});

test('an output that fails (disk full) is not acknowledged, nor is anything after it; the batch is taken later', async () => {
  const { log, lines } = capturingLogger();
  const statePath = join(dir, 'full.db');
  const output = await jsonLinesOutput('/dev/full'); // every write fails with ENOSPC
  const { receiver, dedup } = makeReceiver('full', { output, dedup: new DedupState(statePath, 1000), log });
  await assert.rejects(receiver.handle({ bytes: envelope(1), origin: 'x' }), (err) => isAgentError(err, 'OUTPUT_FAILED') && /ENOSPC/.test(err.message));
  const failure = await receiver.failed;
  assert.equal(failure.code, 'OUTPUT_FAILED');
  // Later messages, good or not, are refused unacknowledged without being looked at.
  await assert.rejects(receiver.handle({ bytes: envelope(2), origin: 'x' }), (err) => isAgentError(err, 'OUTPUT_FAILED'));
  await assert.rejects(receiver.handle({ bytes: new Uint8Array(4), origin: 'x' }), (err) => isAgentError(err, 'OUTPUT_FAILED'));
  assert.equal(receiver.stats().accepted, 0);
  assert.equal(lines.filter((l) => l.level === 50).length, 1, 'logged once');
  await output.close();
  dedup.close();
  // Nothing was marked: a receiver with a working output takes both batches when they are redelivered.
  const next = makeReceiver('full-next', { dedup: new DedupState(statePath, 1000) });
  await next.receiver.handle({ bytes: envelope(1), origin: 'x' });
  await next.receiver.handle({ bytes: envelope(2), origin: 'x' });
  assert.equal(next.receiver.stats().accepted, 2);
  next.dedup.close();
});

test('the state database and the output file are 0600, in directories created 0700', async () => {
  const previous = process.umask(0o022);
  try {
    const state = new DedupState(join(dir, 'modes', 'data', 'receiver.db'), 10);
    state.mark('gw-1', 's', 'aa', 1, 1);
    const target = join(dir, 'modes', 'out', 'deeper', 'records.jsonl');
    const output = await jsonLinesOutput(target);
    await output.write(header(1), [{ n: 1 }]);
    await output.close();
    const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
    assert.equal(mode(join(dir, 'modes', 'data')), '700');
    assert.equal(mode(join(dir, 'modes', 'data', 'receiver.db')), '600');
    assert.equal(mode(join(dir, 'modes', 'data', 'receiver.db-wal')), '600');
    assert.equal(mode(join(dir, 'modes', 'out')), '700');
    assert.equal(mode(join(dir, 'modes', 'out', 'deeper')), '700');
    assert.equal(mode(target), '600');
    state.close();
  } finally {
    process.umask(previous);
  }
});
