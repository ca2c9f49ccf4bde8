/**
 * The shipped `receive` command against a real Mosquitto: bad device keys disable only their device (or stop
 * the start when every device is bad), and an output whose reader went away ends the process cleanly with
 * exit code 1, having acknowledged nothing it did not write.
 */
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { compress, encodeRecords } from '../../agent/envelope/codec.ts';
import { seal } from '../../agent/envelope/seal.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { deviceSendKey, keyId, loadPrivateKey, loadPublicKey } from '../../agent/keys/keys.ts';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { workspace } from '../helpers/setup.ts';

function receive(config: string, stdout: 'ignore' | 'pipe' = 'ignore') {
  const child = spawn(process.execPath, ['agent/cli/main.ts', 'receive', '--config', config], { stdio: ['ignore', stdout, 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stderrMatches = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(stderr)) {
          child.stderr!.off('data', check);
          resolve();
        }
      };
      child.stderr!.on('data', check);
      void exited.then((code) => reject(new Error(`exited (${code}) before ${pattern}: ${stderr}`)));
      check();
    });
  return { child, exited, stderr: () => stderr, stderrMatches };
}

function centreYaml(url: string, devices: string, output: string): string {
  return `data_dir: data
log: { level: info, format: json }
sink: { type: mqtt, url: ${url} }
receiver:
  private_key: keys/centre.key
  devices:
${devices}
  output: ${output}
`;
}

/** Batches sealed with the workspace's device key, claiming device `id`. */
function sealer(dir: string) {
  const device = loadPrivateKey(x25519, join(dir, 'keys', 'device.key'));
  const centrePub = loadPublicKey(join(dir, 'keys', 'centre.pub'));
  const key = deviceSendKey(x25519, device, centrePub);
  return (id: string, seq: number) =>
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
        compress(encodeRecords([{ seq }]), { compression: 'deflate', level: undefined }),
        key,
      ),
    );
}

function linesOf(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
}

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

function writeBadKeys(dir: string): void {
  writeFileSync(join(dir, 'keys', 'zero.pub'), `x25519-public ${Buffer.alloc(32).toString('base64')}\n`);
  writeFileSync(join(dir, 'keys', 'short.pub'), `x25519-public ${Buffer.alloc(16, 7).toString('base64')}\n`);
}

test('a bad device key disables that device, named with its file; the others are served', { timeout: 120_000 }, async () => {
  const ws = await workspace();
  const broker = await startMosquitto();
  writeBadKeys(ws.dir);
  const out = join(ws.dir, 'out.jsonl');
  const config = join(ws.dir, 'centre.yaml');
  writeFileSync(
    config,
    centreYaml(
      broker.url,
      `    - { id: gw-zero, public_keys: [keys/zero.pub] }
    - { id: gw-good, public_keys: [keys/device.pub] }
    - { id: gw-short, public_keys: [keys/short.pub] }
    - { id: gw-missing, public_keys: [keys/missing.pub] }`,
      out,
    ),
  );
  const receiver = receive(config);
  try {
    await receiver.stderrMatches(/"msg":"subscribed"/);
    const errors = receiver
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"level":"error"'));
    assert.equal(errors.length, 3, receiver.stderr());
    for (const [id, file] of [
      ['gw-zero', 'zero.pub'],
      ['gw-short', 'short.pub'],
      ['gw-missing', 'missing.pub'],
    ] as const) {
      const line = errors.find((l) => l.includes(`device ${id} disabled`));
      assert.ok(line?.includes(join(ws.dir, 'keys', file)), `${id}: ${line}`);
    }
    const client = await mqtt.connectAsync(broker.url, { clientId: 'gateways' });
    const batch = sealer(ws.dir);
    await client.publishAsync('edge-agent/v1/gw-zero/s', batch('gw-zero', 1), { qos: 1 });
    await client.publishAsync('edge-agent/v1/gw-good/s', batch('gw-good', 1), { qos: 1 });
    await untilLines(ws.dir, out, 1);
    await client.endAsync();
    assert.deepEqual(
      linesOf(out).map((l) => JSON.parse(l).device),
      ['gw-good'],
    );
  } finally {
    receiver.child.kill('SIGTERM');
    const code = await receiver.exited;
    await broker.stop();
    ws.cleanup();
    assert.equal(code, 0, receiver.stderr());
  }
});

test('when every device has a bad key the receiver does not start, and says which and why', { timeout: 120_000 }, async () => {
  const ws = await workspace();
  const broker = await startMosquitto();
  writeBadKeys(ws.dir);
  const config = join(ws.dir, 'centre.yaml');
  writeFileSync(config, centreYaml(broker.url, '    - { id: gw-zero, public_keys: [keys/zero.pub] }', join(ws.dir, 'out.jsonl')));
  const receiver = receive(config);
  try {
    assert.equal(await receiver.exited, 1);
    assert.match(receiver.stderr(), /every device in receiver\.devices has a bad public key/);
    assert.match(receiver.stderr(), new RegExp(`device gw-zero: .*${join(ws.dir, 'keys', 'zero.pub')}: not a usable X25519 public key`));
  } finally {
    await broker.stop();
    ws.cleanup();
  }
});

test('output "-" whose reader exits: logged once, exit 1 without a crash, and the unwritten batch is redelivered', { timeout: 120_000 }, async () => {
  const ws = await workspace();
  const broker = await startMosquitto();
  const config = join(ws.dir, 'centre.yaml');
  writeFileSync(config, centreYaml(broker.url, '    - { id: gw-1, public_keys: [keys/device.pub] }', '"-"'));
  const receiver = receive(config, 'pipe');
  const batch = sealer(ws.dir);
  const client = await mqtt.connectAsync(broker.url, { clientId: 'gateway' });
  try {
    await receiver.stderrMatches(/"msg":"subscribed"/);
    const firstLine = new Promise<string>((resolve) => {
      let text = '';
      receiver.child.stdout!.on('data', (d) => {
        text += d;
        if (text.includes('\n')) resolve(text);
      });
    });
    await client.publishAsync('edge-agent/v1/gw-1/s', batch('gw-1', 1), { qos: 1 });
    assert.equal(JSON.parse(await firstLine).seq, 1);
    // The reader goes away: the read end of the pipe is closed.
    receiver.child.stdout!.destroy();
    await client.publishAsync('edge-agent/v1/gw-1/s', batch('gw-1', 2), { qos: 1 });
    assert.equal(await receiver.exited, 1, receiver.stderr());
    const stderr = receiver.stderr();
    assert.equal(stderr.match(/receiver output failed/g)?.length, 1, stderr);
    assert.match(stderr, /OUTPUT_FAILED.*EPIPE/);
    assert.doesNotMatch(stderr, /Unhandled|uncaught|node:internal/i);
    // The same centre with a file output resumes the session: batch 2, never written, arrives now; batch 1,
    // written and acknowledged, does not come again.
    const out = join(ws.dir, 'out.jsonl');
    writeFileSync(config, readFileSync(config, 'utf8').replace('output: "-"', `output: ${out}`));
    const again = receive(config);
    try {
      await untilLines(ws.dir, out, 1);
    } finally {
      again.child.kill('SIGTERM');
    }
    assert.equal(await again.exited, 0, again.stderr());
    assert.deepEqual(
      linesOf(out).map((l) => JSON.parse(l).seq),
      [2],
    );
  } finally {
    await client.endAsync();
    receiver.child.kill('SIGKILL');
    await broker.stop();
    ws.cleanup();
  }
});

test('receive: SIGHUP is logged and ignored, batches after it are written, SIGTERM then stops it with exit 0', { timeout: 120_000 }, async () => {
  const ws = await workspace();
  const broker = await startMosquitto();
  const out = join(ws.dir, 'out.jsonl');
  const config = join(ws.dir, 'centre.yaml');
  writeFileSync(config, centreYaml(broker.url, '    - { id: gw-1, public_keys: [keys/device.pub] }', out));
  const receiver = receive(config);
  const batch = sealer(ws.dir);
  const client = await mqtt.connectAsync(broker.url, { clientId: 'gateway-hup' });
  try {
    await receiver.stderrMatches(/"msg":"subscribed"/);
    receiver.child.kill('SIGHUP');
    await receiver.stderrMatches(/SIGHUP received and ignored/);
    await client.publishAsync('edge-agent/v1/gw-1/s', batch('gw-1', 1), { qos: 1 });
    await untilLines(ws.dir, out, 1);
    receiver.child.kill('SIGTERM');
    assert.equal(await receiver.exited, 0, receiver.stderr());
    assert.deepEqual(
      linesOf(out).map((l) => JSON.parse(l).seq),
      [1],
    );
  } finally {
    await client.endAsync();
    receiver.child.kill('SIGKILL');
    await broker.stop();
    ws.cleanup();
  }
});
