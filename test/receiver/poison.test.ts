/**
 * Poison-batch handling in the receiver (agent/receiver/poison.ts): the CBOR walk refuses what would exhaust
 * memory before anything is built; a full output disk (a real, small tmpfs) is retried, leaves no torn line,
 * and after receiver.output_retry_for the batch is set aside and the next one goes on; a batch the output
 * cannot serialise is set aside at once while another device's batches are written; the store is bounded.
 */
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { scanBody } from '../../agent/envelope/cbor-scan.ts';
import { decodeBody } from '../../agent/envelope/cbor-decode.ts';
import { compress, encodeRecords } from '../../agent/envelope/codec.ts';
import type { EnvelopeHeader } from '../../agent/envelope/header.ts';
import { malformedReason } from '../../agent/envelope/malformed.ts';
import { seal } from '../../agent/envelope/seal.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { libsodiumReference } from '../../scripts/lib/libsodium-reference.ts';
import { AgentError } from '../../agent/errors.ts';
import { deviceSendKey, keyId, type KeyPair } from '../../agent/keys/keys.ts';
import { silentLogger } from '../../agent/log.ts';
import { DeadLetterStore } from '../../agent/receiver/dead-letter.ts';
import { DedupState } from '../../agent/receiver/dedup.ts';
import { jsonLinesOutput, type RecordOutput } from '../../agent/receiver/output.ts';
import { receiveHeapMbFromArgs } from '../../agent/receiver/heap.ts';
import { DEFAULT_RECEIVER_LIMITS, receiverHeapMb } from '../../agent/receiver/limits.ts';
import { PoisonHandling } from '../../agent/receiver/poison.ts';
import { Receiver } from '../../agent/receiver/receiver.ts';
import { Telemetry } from '../../agent/telemetry/registry.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';

const reference = await libsodiumReference();
const seeded = (b: number): KeyPair => reference.crypto_kx_seed_keypair(new Uint8Array(32).fill(b));
const devices = { 'gw-a': seeded(1), 'gw-b': seeded(2) };
const centre = seeded(10);

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-receiver-poison-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function envelope(device: keyof typeof devices, seq: number, body: Uint8Array, count = 1): Uint8Array {
  const header: EnvelopeHeader = {
    device,
    stream: 's',
    epoch: new Uint8Array(8).fill(7),
    seq,
    count,
    created: 1767225600000 + seq,
    compression: 'deflate',
    deviceKeyId: keyId(devices[device].publicKey),
    centreKeyId: keyId(centre.publicKey),
    nonce: new Uint8Array(randomBytes(24)),
  };
  return seal(header, body, deviceSendKey(x25519, devices[device], centre.publicKey));
}

const records = (records: AgentRecord[]) => compress(encodeRecords(records), { compression: 'deflate', level: undefined });

function makeReceiver(name: string, output: RecordOutput, options: { retryForMs?: number; sleeps?: number[]; maxBytes?: number } = {}) {
  const telemetry = new Telemetry();
  const store = new DeadLetterStore(join(dir, name, 'dead-letter.db'), options.maxBytes);
  const dedup = new DedupState(join(dir, name, 'receiver.db'), 1000);
  const sleeps = options.sleeps;
  const poison = new PoisonHandling(store, output, silentLogger, telemetry, {
    retryForMs: options.retryForMs,
    sleep: sleeps ? (ms) => (sleeps.push(ms), new Promise((resolve) => setTimeout(resolve, 5))) : undefined,
  });
  const receiver = new Receiver(
    x25519,
    [centre],
    Object.entries(devices).map(([id, k]) => ({ id, publicKeys: [k.publicKey] })),
    dedup,
    output,
    silentLogger,
    undefined,
    { telemetry, poison },
  );
  return { receiver, store, dedup, telemetry, close: () => (store.close(), dedup.close()) };
}

test('the CBOR walk refuses a million empty maps and deep nesting before anything is built, and agrees with the decoder', () => {
  // 1 KB on the wire: a million empty maps in an indefinite array.
  const bomb = Buffer.concat([Buffer.from([0x9f]), Buffer.alloc(1_000_000, 0xa0), Buffer.from([0xff])]);
  assert.ok(zlib.deflateRawSync(bomb).length < 2000);
  const before = process.memoryUsage().heapUsed;
  assert.throws(
    () => decodeBody(bomb, { text: 'strict', maxRecords: 100_000, maxNesting: 256 }),
    (err) => malformedReason(err) === 'too-many-records' && /more than 100000 records/.test((err as Error).message),
  );
  assert.ok(process.memoryUsage().heapUsed - before < 8 * 1024 * 1024, 'nothing materialised');
  // A definite length is refused from its head alone.
  assert.throws(
    () => scanBody(Buffer.concat([Buffer.from([0x9a, 0x00, 0x01, 0x86, 0xa1]), Buffer.alloc(100_001, 0xa0)]), 100_000, 256),
    (err) => malformedReason(err) === 'too-many-records' && /at body byte 0 holds 100001 records/.test((err as Error).message),
  );
  const deep = Buffer.from([0x81, 0xa1, 0x61, 0x61, ...new Array<number>(300).fill(0x81), 0x00]);
  assert.throws(
    () => scanBody(deep, 10, 256),
    (err) => malformedReason(err) === 'too-deep' && /byte 258 is nested deeper than 256/.test((err as Error).message),
  );
  assert.equal(decodeBody(deep, { text: 'strict', maxRecords: 10, maxNesting: 302 }).length, 1);
  assert.throws(
    () => decodeBody(deep, { text: 'strict', maxRecords: 10, maxNesting: 301 }),
    (err) => malformedReason(err) === 'too-deep',
  );
  // Whatever the encoder makes, within the limits, the walk passes and counts the records the decoder returns.
  const sample: AgentRecord[] = [
    { a: 1, b: 'x', c: [1, 2, { d: null }], e: new Uint8Array([1, 2]), f: 1.5, g: 2n ** 70n, h: new Date(0), i: { j: { k: [] } } },
    {},
    { big: 'é'.repeat(100), neg: -(2 ** 40), list: Array.from({ length: 300 }, (_, i) => i) },
  ];
  for (let n = 0; n <= 3; n++) {
    const body = encodeRecords(sample.slice(0, n).map((r) => structuredClone(r)));
    assert.equal(scanBody(body, 3, 256).records, n);
    assert.equal(decodeBody(body, { text: 'strict', maxRecords: 3, maxNesting: 256 }).length, n);
    if (n > 0)
      assert.throws(
        () => scanBody(body, n - 1, 256),
        (err) => malformedReason(err) === 'too-many-records',
      );
  }
  // Self-described and indefinite forms.
  assert.equal(scanBody(Buffer.from([0xd9, 0xd9, 0xf7, 0x9f, 0xa0, 0xbf, 0x61, 0x61, 0x7f, 0x61, 0x62, 0xff, 0xff, 0xff]), 2, 3).records, 2);
  assert.throws(
    () => scanBody(Buffer.from([0x9f, 0xa0]), 10, 10),
    (err) => malformedReason(err) === 'cbor-invalid',
  );
});

test('a batch over max_records from one device is set aside and acknowledged; the other device is written', async () => {
  const out = join(dir, 'records', 'out.jsonl');
  const output = await jsonLinesOutput(out);
  const r = makeReceiver('records', output);
  const many = Array.from({ length: 100_001 }, () => ({}));
  await r.receiver.handle({ bytes: envelope('gw-a', 1, records(many), many.length), origin: 'edge-agent/v1/gw-a/s' });
  await r.receiver.handle({ bytes: envelope('gw-b', 1, records([{ n: 1 }])), origin: 'edge-agent/v1/gw-b/s' });
  assert.deepEqual(
    r.store.list().map((e) => [e.device, e.seq, e.records, e.reason]),
    [['gw-a', 1, 100_001, 'ENVELOPE_MALFORMED/too-many-records']],
  );
  assert.deepEqual(
    readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).device),
    ['gw-b'],
  );
  assert.deepEqual(
    r.telemetry
      .get('edge_receiver_dead_letters_total')!
      .samples()
      .map((s) => [s.labels.reason, (s as { value: number }).value]),
    [['ENVELOPE_MALFORMED/too-many-records', 1]],
  );
  assert.equal(r.receiver.stats().deadLettered, 1);
  await output.close();
  r.close();
});

test('a batch the output cannot serialise is set aside at once; batches after it, of any device, are written', async () => {
  const out = join(dir, 'unwritable', 'out.jsonl');
  const file = await jsonLinesOutput(out);
  // A test output: the file output, except that it cannot serialise gw-a's batch 2 (as JSON text longer than
  // a string holds could not be, which the receiver's limits keep out of reach of a real batch).
  const output: RecordOutput = {
    write: (header, recs) =>
      header.device === 'gw-a' && header.seq === 2
        ? Promise.reject(new AgentError('OUTPUT_UNWRITABLE', 'batch gw-a/s#2 cannot be written as JSON lines: Invalid string length'))
        : file.write(header, recs),
    close: () => file.close(),
  };
  const sleeps: number[] = [];
  const r = makeReceiver('unwritable', output, { sleeps });
  for (const [device, seq] of [
    ['gw-a', 1],
    ['gw-a', 2],
    ['gw-b', 1],
    ['gw-a', 3],
  ] as const) {
    await r.receiver.handle({ bytes: envelope(device, seq, records([{ seq }])), origin: `edge-agent/v1/${device}/s` });
  }
  assert.deepEqual(sleeps, [], 'not retried');
  assert.deepEqual(
    r.store.list().map((e) => [e.device, e.seq, e.reason]),
    [['gw-a', 2, 'OUTPUT_UNWRITABLE']],
  );
  assert.deepEqual(
    readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => `${JSON.parse(l).device}#${JSON.parse(l).seq}`),
    ['gw-a#1', 'gw-b#1', 'gw-a#3'],
  );
  await output.close();
  r.close();
});

test('the dead-letter store is bounded by bytes (oldest dropped, counted) and private', () => {
  const store = new DeadLetterStore(join(dir, 'bounded', 'dl.db'), 1000);
  const batch = (seq: number, size: number) => ({
    device: 'gw-a',
    stream: 's',
    epoch: '00',
    seq,
    records: 1,
    origin: 't',
    reason: 'X',
    message: 'm',
    envelope: new Uint8Array(size),
  });
  assert.equal(store.add(batch(1, 400)).dropped, 0);
  assert.equal(store.add(batch(2, 400)).dropped, 0);
  assert.equal(store.add(batch(3, 400)).dropped, 1);
  assert.deepEqual(store.add(batch(4, 1001)), { id: undefined, dropped: 1 });
  assert.deepEqual(
    store.list().map((e) => e.seq),
    [2, 3],
  );
  assert.equal(store.bytes(), 800);
  assert.equal(statSync(join(dir, 'bounded', 'dl.db')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'bounded')).mode & 0o777, 0o700);
  store.close();
});

/** A tmpfs of `kb` KiB at a fresh directory, or undefined (with the reason printed) where mounting is not allowed. */
function smallDisk(kb: number): { path: string; unmount: () => void } | undefined {
  const path = mkdtempSync(join(tmpdir(), 'edge-small-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kb}k,mode=0700`, 'tmpfs', path], { stdio: 'pipe' });
  } catch (err) {
    rmSync(path, { recursive: true, force: true });
    console.log(`# skipping the full-disk tests: cannot mount a small tmpfs here (${(err as Error).message.split('\n')[0]})`);
    return undefined;
  }
  return {
    path,
    unmount: () => {
      execFileSync('umount', [path]);
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** Fills the file system at `path` to within `leave` bytes with a filler file. */
function fill(path: string, leave: number): string {
  const filler = join(path, 'filler');
  const free = Number(execFileSync('df', ['--output=avail', '-B1', path], { encoding: 'utf8' }).trim().split('\n')[1]);
  writeFileSync(filler, Buffer.alloc(Math.max(0, free - leave)));
  return filler;
}

test('a full output disk is retried with backoff, leaves no torn line, and the batch is written once space is back', async (t) => {
  const disk = smallDisk(256);
  if (!disk) return t.skip('cannot mount a tmpfs');
  try {
    const out = join(disk.path, 'out', 'records.jsonl');
    mkdirSync(join(disk.path, 'out'));
    const output = await jsonLinesOutput(out);
    const sleeps: number[] = [];
    const r = makeReceiver('full', output, { sleeps, retryForMs: 60 * 60_000 });
    await r.receiver.handle({ bytes: envelope('gw-a', 1, records([{ seq: 1 }])), origin: 'x' });
    const filler = fill(disk.path, 2048);
    // 20 KB of JSON: the first part fits, the rest does not.
    const big = Array.from({ length: 200 }, (_, i) => ({ i, text: 'x'.repeat(80) }));
    const handled = r.receiver.handle({ bytes: envelope('gw-b', 1, records(big), big.length), origin: 'y' });
    await new Promise<void>((resolve) => {
      const check = () => (sleeps.length >= 3 ? resolve() : setTimeout(check, 5));
      check();
    });
    // Nothing of the batch is in the file while it waits.
    assert.equal(readFileSync(out, 'utf8').trim().split('\n').length, 1);
    rmSync(filler);
    await handled;
    assert.deepEqual(sleeps.slice(0, 3), [500, 1000, 2000]);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(lines.length, 201);
    assert.deepEqual(
      lines.map((l) => JSON.parse(l).record.i ?? -1),
      [-1, ...big.map((_, i) => i)],
    );
    assert.equal(r.store.count(), 0);
    assert.ok(r.telemetry.get('edge_receiver_output_retries_total')!.samples().length > 0);
    await output.close();
    r.close();
  } finally {
    disk.unmount();
  }
});

test('a batch still failing after output_retry_for is set aside, and the receiver goes on when space is back', async (t) => {
  const disk = smallDisk(256);
  if (!disk) return t.skip('cannot mount a tmpfs');
  try {
    const out = join(disk.path, 'records.jsonl');
    const output = await jsonLinesOutput(out);
    const sleeps: number[] = [];
    const r = makeReceiver('full-long', output, { sleeps, retryForMs: 1 });
    const filler = fill(disk.path, 0);
    await r.receiver.handle({ bytes: envelope('gw-a', 1, records([{ seq: 1, pad: 'p'.repeat(5000) }])), origin: 'x' });
    await r.receiver.handle({ bytes: envelope('gw-b', 1, records([{ seq: 1, pad: 'p'.repeat(5000) }])), origin: 'x' });
    assert.deepEqual(
      r.store.list().map((e) => [e.device, e.reason]),
      [
        ['gw-a', 'OUTPUT_FAILED'],
        ['gw-b', 'OUTPUT_FAILED'],
      ],
    );
    assert.match(r.store.list()[0]!.message, /ENOSPC/);
    rmSync(filler);
    await r.receiver.handle({ bytes: envelope('gw-a', 2, records([{ seq: 2 }])), origin: 'x' });
    assert.deepEqual(
      readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => `${JSON.parse(l).device}#${JSON.parse(l).seq}`),
      ['gw-a#2'],
    );
    assert.equal(r.receiver.stats().deadLettered, 2);
    await output.close();
    r.close();
  } finally {
    disk.unmount();
  }
});

test("the gateway's ingest nesting limit is the receiver's default: the deepest record it encodes is taken, one level more is refused at ingest", async () => {
  const nested = (levels: number): AgentRecord => {
    // A record is level 2 (the batch array is 1); each array inside adds one.
    let value: unknown = 0;
    for (let i = 0; i < levels - 1; i++) value = [value];
    return { v: value };
  };
  const deepest = nested(DEFAULT_RECEIVER_LIMITS.maxNesting - 1);
  const out = join(dir, 'nesting', 'out.jsonl');
  const output = await jsonLinesOutput(out);
  const r = makeReceiver('nesting', output);
  await r.receiver.handle({ bytes: envelope('gw-a', 1, records([deepest])), origin: 'x' });
  assert.equal(r.receiver.stats().accepted, 1);
  assert.equal(r.store.count(), 0);
  assert.throws(
    () => encodeRecords([nested(DEFAULT_RECEIVER_LIMITS.maxNesting)]),
    (err) => err instanceof AgentError && err.code === 'RECORD_INVALID' && /nested deeper than 255 levels/.test(err.message),
  );
  await output.close();
  r.close();
});

test('the heap `receive` asks for follows the limits in its config file, read before anything else is loaded', () => {
  const file = join(dir, 'heap.yaml');
  writeFileSync(file, 'receiver:\n  max_batch_bytes: 2MiB\n  max_records: 1000\n');
  const raised = receiveHeapMbFromArgs(['--config', file]);
  assert.equal(raised, receiverHeapMb({ ...DEFAULT_RECEIVER_LIMITS, maxBatchBytes: 2 * 1024 * 1024, maxRecords: 1000 }));
  assert.ok(raised > receiverHeapMb(DEFAULT_RECEIVER_LIMITS));
  assert.equal(receiverHeapMb(DEFAULT_RECEIVER_LIMITS), 176);
  // A file it cannot read yet gets the defaults' size; the real load reports the file next.
  assert.equal(receiveHeapMbFromArgs(['-c', join(dir, 'missing.yaml')]), 176);
});

test('the same batch delivered twice at once (a redelivery while the first copy is written) is written once', async () => {
  // An output that holds its first write until released: the second copy arrives while the first is written.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const written: AgentRecord[][] = [];
  const output: RecordOutput = {
    write: async (_header, batch) => {
      written.push(batch);
      if (written.length === 1) await held;
    },
    close: async () => {},
  };
  const r = makeReceiver('twice-at-once', output);
  try {
    const message = { bytes: envelope('gw-a', 1, records([{ n: 1 }, { n: 2 }]), 2), origin: 'edge-agent/v1/gw-a/s' };
    const first = r.receiver.handle(message);
    const second = r.receiver.handle(message);
    const third = r.receiver.handle({ ...message, bytes: envelope('gw-a', 2, records([{ n: 3 }])) });
    await third; // another batch of the same stream is not held up by the one being written
    assert.equal(written.length, 2);
    release();
    await Promise.all([first, second]);
    assert.equal(written.length, 2, 'the first copy written once, the second dropped as a duplicate');
    assert.equal(r.receiver.stats().accepted, 2);
  } finally {
    r.close();
  }
});
