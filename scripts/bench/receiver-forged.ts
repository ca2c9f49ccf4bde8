/**
 * How much memory a forged envelope costs the receiver. Starts `edge-agent receive` on a private Mosquitto,
 * publishes three envelopes whose header is copied from a real one (device id, key ids) with MIB MiB of random
 * ciphertext, each followed by a good batch, then 20 more good batches, and reports the receiver's resident size.
 *
 *   node scripts/bench/receiver-forged.ts [MIB=255]
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomFillSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { compress, encodeRecords } from '../../agent/envelope/codec.ts';
import { encodeHeader, type EnvelopeHeader } from '../../agent/envelope/header.ts';
import { seal } from '../../agent/envelope/seal.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { deviceSendKey, keyId, loadPrivateKey, loadPublicKey, writeKeyPair } from '../../agent/keys/keys.ts';
import { startMosquitto } from '../lib/mosquitto.ts';

const mib = Number(process.argv[2] ?? 255);
const dir = mkdtempSync(join(tmpdir(), 'edge-forged-'));
writeKeyPair(x25519, join(dir, 'keys', 'device'));
writeKeyPair(x25519, join(dir, 'keys', 'centre'));
const broker = await startMosquitto();
const out = join(dir, 'out.jsonl');
const config = join(dir, 'centre.yaml');
writeFileSync(
  config,
  `data_dir: data
log: { level: info, format: json }
sink: { type: mqtt, url: ${broker.url} }
receiver:
  private_key: keys/centre.key
  devices: [{ id: gw-1, public_keys: [keys/device.pub] }]
  output: ${out}
`,
);

const rss = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const hwm = (pid: number): number => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;

const child = spawn(process.execPath, ['agent/cli/main.ts', 'receive', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
let stderr = '';
const waiters: { pattern: RegExp; from: number; resolve: () => void }[] = [];
child.stderr!.on('data', (d) => {
  stderr += d;
  for (const w of waiters.splice(0)) {
    if (w.pattern.test(stderr.slice(w.from))) w.resolve();
    else waiters.push(w);
  }
});
const waitFor = (pattern: RegExp, from = 0) =>
  new Promise<void>((resolve) => (pattern.test(stderr.slice(from)) ? resolve() : waiters.push({ pattern, from, resolve })));

try {
  await waitFor(/"msg":"subscribed"/);
  const pid = child.pid!;
  const idle = rss(pid);

  const device = loadPrivateKey(x25519, join(dir, 'keys', 'device.key'));
  const centrePub = loadPublicKey(join(dir, 'keys', 'centre.pub'));
  const key = deviceSendKey(x25519, device, centrePub);
  let seq = 0;
  const header = (): EnvelopeHeader => ({
    device: 'gw-1',
    stream: 'telemetry',
    epoch: new Uint8Array(8).fill(7),
    seq: ++seq,
    count: 1,
    created: Date.now(),
    compression: 'deflate',
    deviceKeyId: keyId(device.publicKey),
    centreKeyId: keyId(centrePub),
    nonce: new Uint8Array(randomBytes(24)),
  });
  const good = () => seal(header(), compress(encodeRecords([{ n: seq, v: 1.5 }]), { compression: 'deflate', level: undefined }), key);

  const lines = () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean).length : 0);
  const client = await mqtt.connectAsync(broker.url, { clientId: 'forger' });
  // The forger: a real header (any device id and key ids are public), then random bytes instead of ciphertext.
  const head = encodeHeader(header());
  const forged = Buffer.allocUnsafe(head.length + mib * 1024 * 1024);
  forged.set(head, 0);
  for (let o = head.length; o < forged.length; o += 1 << 26) randomFillSync(forged, o, Math.min(1 << 26, forged.length - o));
  // Three in a row: memory that is kept would add up; memory that is garbage is reused.
  const afterEach: string[] = [];
  let rejectedAfter = 0;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    await client.publishAsync('edge-agent/v1/gw-1/telemetry', forged, { qos: 1 });
    // Messages are handled in order: once the good batch after it is written, the forgery was dealt with
    // (later rejections of one code are counted, not logged, so the log cannot tell).
    await client.publishAsync('edge-agent/v1/gw-1/telemetry', Buffer.from(good()), { qos: 1 });
    while (lines() < i + 1) await new Promise((r) => setTimeout(r, 20));
    if (i === 0) rejectedAfter = performance.now() - started;
    afterEach.push(mb(rss(pid)));
  }
  // Good batches after it: the receiver still works, and the forged message's memory is not kept.
  for (let i = 0; i < 20; i++) await client.publishAsync('edge-agent/v1/gw-1/telemetry', Buffer.from(good()), { qos: 1 });
  while (lines() < 23) await new Promise((r) => setTimeout(r, 50));
  const afterGood = rss(pid);
  await client.endAsync();
  console.log(
    JSON.stringify(
      {
        forged_mib: mib,
        handled_in_ms: Math.round(rejectedAfter),
        rss_idle: mb(idle),
        rss_after_each_of_3: afterEach,
        rss_after_20_good: mb(afterGood),
        peak_rss: mb(hwm(pid)),
        rejection: stderr
          .split('\n')
          .find((l) => /rejected/.test(l))
          ?.slice(0, 400),
      },
      null,
      1,
    ),
  );
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
}
