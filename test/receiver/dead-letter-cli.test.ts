/**
 * Poison batches against the shipped `receive` command and a real Mosquitto: a batch the receiver cannot
 * output (records nested deeper than receiver.max_nesting) from one device is set aside in the dead-letter
 * store and acknowledged, while another device's batches, published before and after it, keep flowing;
 * `edge-agent dead-letter list|show|replay` inspect it and, once the limit is raised, write it out.
 */
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import mqtt from 'mqtt';
import { compress, encodeRecords } from '../../agent/envelope/codec.ts';
import { seal } from '../../agent/envelope/seal.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { deviceSendKey, keyId, loadPrivateKey, loadPublicKey } from '../../agent/keys/keys.ts';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { workspace } from '../helpers/setup.ts';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, ['agent/cli/main.ts', ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    ),
  );
}

/** A body whose one record holds `depth` nested arrays: deeper than the gateway would ever send. */
function nestedBody(depth: number): Uint8Array {
  const bytes = [0x81, 0xa1, 0x61, 0x61, ...new Array<number>(depth).fill(0x81), 0x00];
  return zlib.deflateRawSync(Buffer.from(bytes));
}

function sealer(dir: string) {
  const device = loadPrivateKey(x25519, join(dir, 'keys', 'device.key'));
  const centrePub = loadPublicKey(join(dir, 'keys', 'centre.pub'));
  const key = deviceSendKey(x25519, device, centrePub);
  return (id: string, seq: number, body = compress(encodeRecords([{ seq }]), { compression: 'deflate', level: undefined })) =>
    Buffer.from(
      seal(
        {
          device: id,
          stream: 's',
          epoch: new Uint8Array(8).fill(1),
          seq,
          count: 1,
          created: Date.now(),
          compression: 'deflate',
          deviceKeyId: keyId(device.publicKey),
          centreKeyId: keyId(centrePub),
          nonce: new Uint8Array(randomBytes(24)),
        },
        body,
        key,
      ),
    );
}

const linesOf = (path: string): Record<string, unknown>[] =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];

function untilLines(dir: string, path: string, n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (linesOf(path).length >= n) {
        watcher.close();
        resolve();
      }
    };
    const watcher = watch(dir, check);
    check();
  });
}

test('a nested batch from one device is dead-lettered and acknowledged; the other device flows; replay writes it once the limit is raised', {
  timeout: 180_000,
}, async () => {
  const ws = await workspace();
  const broker = await startMosquitto();
  const out = join(ws.dir, 'out.jsonl');
  const config = join(ws.dir, 'centre.yaml');
  const yaml = (maxNesting: number) => `data_dir: data
log: { level: info, format: json }
sink: { type: mqtt, url: ${broker.url} }
receiver:
  private_key: keys/centre.key
  devices:
    - { id: gw-bad, public_keys: [keys/device.pub] }
    - { id: gw-good, public_keys: [keys/device.pub] }
  output: ${out}
  max_nesting: ${maxNesting}
`;
  writeFileSync(config, yaml(256));
  const child = spawn(process.execPath, ['agent/cli/main.ts', 'receive', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const batch = sealer(ws.dir);
  const client = await mqtt.connectAsync(broker.url, { clientId: 'gateways' });
  try {
    await new Promise<void>((resolve) => {
      const check = () => /"msg":"subscribed"/.test(stderr) && resolve();
      child.stderr.on('data', check);
      check();
    });
    await client.publishAsync('edge-agent/v1/gw-good/s', batch('gw-good', 1), { qos: 1 });
    await client.publishAsync('edge-agent/v1/gw-bad/s', batch('gw-bad', 1, nestedBody(300)), { qos: 1 });
    for (let seq = 2; seq <= 5; seq++) await client.publishAsync('edge-agent/v1/gw-good/s', batch('gw-good', seq), { qos: 1 });
    await untilLines(ws.dir, out, 5);
    // The same batch again (a redelivery): already set aside, dropped as a duplicate, not stored twice.
    await client.publishAsync('edge-agent/v1/gw-bad/s', batch('gw-bad', 1, nestedBody(300)), { qos: 1 });
    await client.publishAsync('edge-agent/v1/gw-good/s', batch('gw-good', 6), { qos: 1 });
    await untilLines(ws.dir, out, 6);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    assert.deepEqual(
      linesOf(out).map((l) => [l.device, l.seq]),
      [1, 2, 3, 4, 5, 6].map((seq) => ['gw-good', seq]),
    );
    const stopped = stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg: string; stats?: { deadLettered: number; duplicates: number } })
      .find((l) => l.msg === 'stopped');
    assert.equal(stopped?.stats?.deadLettered, 1, stderr);
    assert.equal(stopped?.stats?.duplicates, 1, stderr);
    assert.match(stderr, /"reason":"ENVELOPE_MALFORMED\/too-deep".*"msg":"batch set aside in the dead-letter store"/);
    const store = join(ws.dir, 'data', 'dead-letter.db');
    assert.equal(statSync(store).mode & 0o777, 0o600);

    const list = await cli(['dead-letter', 'list', '--config', config, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const entries = list.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: number; device: string; seq: number; reason: string; message: string });
    assert.equal(entries.length, 1, list.stdout);
    assert.deepEqual([entries[0]!.device, entries[0]!.seq, entries[0]!.reason], ['gw-bad', 1, 'ENVELOPE_MALFORMED/too-deep']);
    const show = await cli(['dead-letter', 'show', String(entries[0]!.id), '--config', config]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /nested deeper than 256 levels/);

    // Replayed under the same limit: refused again, kept, the attempt counted.
    const refused = await cli(['dead-letter', 'replay', '--all', '--config', config]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /refused \(ENVELOPE_MALFORMED\)/);
    assert.equal(linesOf(out).length, 6);
    // Raised: written, and gone from the store.
    writeFileSync(config, yaml(400));
    const replay = await cli(['dead-letter', 'replay', String(entries[0]!.id), '--config', config]);
    assert.equal(replay.code, 0, replay.stderr);
    const lines = linesOf(out);
    assert.equal(lines.length, 7);
    assert.deepEqual([lines[6]!.device, lines[6]!.seq], ['gw-bad', 1]);
    let depth = 0;
    for (let v = (lines[6]!.record as { a: unknown }).a; Array.isArray(v); v = v[0]) depth++;
    assert.equal(depth, 300);
    const after = await cli(['dead-letter', 'list', '--config', config, '--json']);
    assert.equal(after.stdout, '');
  } finally {
    await client.endAsync();
    child.kill('SIGKILL');
    await broker.stop();
    ws.cleanup();
  }
});
