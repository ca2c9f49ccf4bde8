/**
 * The packaged receiver under the heap it sizes for itself (agent/receiver/limits.ts): it takes the largest
 * batches its default limits allow (a default gateway's 1000 records in 256 KiB, 100,000 records, and 512 KiB
 * of the CBOR that costs the most heap once decoded), refuses a 1 KB CBOR bomb without running out of memory
 * and goes on, and will not start under a cap too small for its limits. Real executable, real Mosquitto.
 */
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import zlib from 'node:zlib';
import mqtt from 'mqtt';
import { encodeRecords } from '../../agent/envelope/codec.ts';
import { seal } from '../../agent/envelope/seal.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { deviceSendKey, keyId, loadPrivateKey, loadPublicKey } from '../../agent/keys/keys.ts';
import { DEFAULT_RECEIVER_LIMITS, receiverHeapMb } from '../../agent/receiver/limits.ts';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { builtExecutable } from '../helpers/executable.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const X64 = join(ROOT, 'dist/edge-agent-linux-x64');

let dir: string;
let broker: Mosquitto;

function sealed(seq: number, count: number, body: Uint8Array): Buffer {
  const device = loadPrivateKey(x25519, join(dir, 'keys', 'device.key'));
  const centrePub = loadPublicKey(join(dir, 'keys', 'centre.pub'));
  return Buffer.from(
    seal(
      {
        device: 'gw-1',
        stream: 's',
        epoch: new Uint8Array(8).fill(3),
        seq,
        count,
        created: Date.now(),
        compression: 'deflate',
        deviceKeyId: keyId(device.publicKey),
        centreKeyId: keyId(centrePub),
        nonce: new Uint8Array(randomBytes(24)),
      },
      zlib.deflateRawSync(body),
      deviceSendKey(x25519, device, centrePub),
    ),
  );
}

/** A batch array of `count` records (definite length), each the CBOR bytes `record`. */
function batchOf(count: number, record: Uint8Array): Uint8Array {
  const head = Buffer.from([0x9a, 0, 0, 0, 0]);
  head.writeUInt32BE(count, 1);
  return Buffer.concat([head, ...Array.from({ length: count }, () => record)]);
}

/** One record {"b": [n empty byte strings]}: the CBOR that costs the most heap per byte once decoded. */
function byteStringsRecord(n: number): Uint8Array {
  const head = Buffer.from([0xa1, 0x61, 0x62, 0x9a, 0, 0, 0, 0]);
  head.writeUInt32BE(n, 4);
  return Buffer.concat([head, Buffer.alloc(n, 0x40)]);
}

const linesOf = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

describe('packaged receiver within its limits (linux-x64)', {
  skip: process.arch === 'x64' && process.platform === 'linux' ? false : 'the host is not linux-x64',
}, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edge-receiver-limits-'));
    builtExecutable('linux-x64');
    execFileSync(X64, ['keygen', '--dir', join(dir, 'keys')], { env: { ...process.env, PKG_NATIVE_CACHE_PATH: join(dir, 'native') } });
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sizes its heap for its limits, takes the largest batches they allow, and refuses a CBOR bomb without running out of memory', {
    timeout: 240_000,
  }, async () => {
    const out = join(dir, 'out.jsonl');
    writeFileSync(
      join(dir, 'centre.yaml'),
      `data_dir: data
log: { level: info, format: json }
sink: { type: mqtt, url: ${broker.url}, topic_prefix: limits-${process.pid} }
receiver:
  private_key: keys/centre.key
  devices: [{ id: gw-1, public_keys: [keys/device.pub] }]
  output: ${out}
`,
    );
    const child = spawn(X64, ['receive', '--config', 'centre.yaml'], {
      cwd: dir,
      env: { ...process.env, PKG_NATIVE_CACHE_PATH: join(dir, 'native'), EDGE_AGENT_HEAP_REPORT: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const until = (what: string, ok: () => boolean) =>
      new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + 120_000;
        const check = () => {
          if (ok()) return resolve();
          if (child.exitCode !== null || Date.now() > deadline) return reject(new Error(`${what} (${linesOf(out).length} lines): ${stderr.slice(-3000)}`));
          setTimeout(check, 50);
        };
        check();
      });
    const client = await mqtt.connectAsync(broker.url, { clientId: `limits-gw-${process.pid}` });
    try {
      await until('subscribed', () => /"msg":"subscribed"/.test(stderr));
      const report = /heap_size_limit=(\d+) pid=(\d+)/.exec(stderr);
      assert.ok(report, stderr);
      const needMb = receiverHeapMb(DEFAULT_RECEIVER_LIMITS);
      const limitMb = Number(report[1]) / 2 ** 20;
      assert.ok(limitMb >= needMb && limitMb <= needMb + 24, `heap_size_limit ${limitMb} MB for a need of ${needMb} MB`);
      assert.equal(Number(report[2]), child.pid);

      const topic = `limits-${process.pid}/gw-1/s`;
      // A default gateway's largest: 1000 records, 256 KiB of CBOR, the costliest kind of CBOR.
      const defaultGateway = batchOf(1000, byteStringsRecord((256 * 1024) / 1000 - 8));
      assert.ok(defaultGateway.length <= 256 * 1024);
      // batch.max_records at its most: 100,000 records, empty maps (the most output per byte).
      const mostRecords = batchOf(100_000, Buffer.from([0xa0]));
      // receiver.max_batch_bytes: one record of 512 KiB of empty byte strings.
      const mostBytes = batchOf(1, byteStringsRecord(DEFAULT_RECEIVER_LIMITS.maxBatchBytes - 13));
      assert.ok(mostBytes.length <= DEFAULT_RECEIVER_LIMITS.maxBatchBytes);
      // The bomb: a million empty maps, 1 KB deflated.
      const bomb = Buffer.concat([Buffer.from([0x9f]), Buffer.alloc(1_000_000, 0xa0), Buffer.from([0xff])]);
      const bombEnvelope = sealed(4, 1_000_000, bomb);
      assert.ok(bombEnvelope.length < 2000, `${bombEnvelope.length}`);
      await client.publishAsync(topic, sealed(1, 1000, defaultGateway), { qos: 1 });
      await client.publishAsync(topic, sealed(2, 100_000, mostRecords), { qos: 1 });
      await client.publishAsync(topic, sealed(3, 1, mostBytes), { qos: 1 });
      await client.publishAsync(topic, bombEnvelope, { qos: 1 });
      // Half of it fits in max_batch_bytes: the walk over the CBOR refuses it before a record is built.
      const halfBomb = Buffer.concat([Buffer.from([0x9f]), Buffer.alloc(500_000, 0xa0), Buffer.from([0xff])]);
      await client.publishAsync(topic, sealed(6, 500_000, halfBomb), { qos: 1 });
      await client.publishAsync(topic, sealed(5, 1, Buffer.from(encodeRecords([{ after: 'bomb' }]))), { qos: 1 });
      await client.publishAsync(topic, sealed(7, 1, Buffer.from(encodeRecords([{ after: 'bombs' }]))), { qos: 1 });
      await until('every batch written', () => linesOf(out).length >= 1000 + 100_000 + 1 + 2);
      // The log reaches stderr on its own schedule, not in step with the output file: wait for both lines.
      await until('both batches set aside, logged', () => /ENVELOPE_MALFORMED\/too-large/.test(stderr) && /ENVELOPE_MALFORMED\/too-many-records/.test(stderr));
      const lines = linesOf(out);
      assert.equal(lines.length, 101_003);
      assert.deepEqual(
        lines.slice(-2).map((l) => JSON.parse(l).record),
        [{ after: 'bomb' }, { after: 'bombs' }],
      );
      assert.match(stderr, /"reason":"ENVELOPE_MALFORMED\/too-large","device":"gw-1","stream":"s","seq":4.*"msg":"batch set aside in the dead-letter store"/);
      assert.match(
        stderr,
        /"reason":"ENVELOPE_MALFORMED\/too-many-records","device":"gw-1","stream":"s","seq":6.*"msg":"batch set aside in the dead-letter store"/,
      );
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr.slice(-3000));
      assert.doesNotMatch(stderr, /heap out of memory|Allocation failed/);
    } finally {
      await client.endAsync();
      child.kill('SIGKILL');
    }
  });

  it('refuses to start under a heap cap smaller than its limits need, naming what to set', { timeout: 60_000 }, async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((done) => {
      const child = spawn(X64, ['receive', '--config', 'centre.yaml'], {
        cwd: dir,
        env: { ...process.env, PKG_NATIVE_CACHE_PATH: join(dir, 'native'), EDGE_AGENT_MAX_OLD_SPACE_MB: '32' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => done({ code, stderr }));
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`need a heap of ${receiverHeapMb(DEFAULT_RECEIVER_LIMITS)} MB, but it is capped at \\d+ MB: set EDGE_AGENT_MAX_OLD_SPACE_MB`),
    );
  });
});
