/**
 * How much memory a forged envelope costs the receiver. Starts `edge-agent receive` on a private Mosquitto,
 * publishes one envelope whose header is copied from a real one (device id, key ids) with MIB MiB of random
 * ciphertext, waits for the rejection, then publishes good batches and reports the receiver's resident size.
 *
 *   node scripts/bench/receiver-forged.ts [MIB=255]
 */
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { compress, encodeRecords } from '../../agent/envelope/codec.ts';
import { encodeHeader, type EnvelopeHeader } from '../../agent/envelope/header.ts';
import { seal } from '../../agent/envelope/seal.ts';
import { sodium } from '../../agent/envelope/sodium.ts';
import { deviceSendKey, keyId, loadPrivateKey, loadPublicKey, writeKeyPair } from '../../agent/keys/keys.ts';
import { startMosquitto } from '../lib/mosquitto.ts';

const mib = Number(process.argv[2] ?? 255);
const na = await sodium();
const dir = mkdtempSync(join(tmpdir(), 'edge-forged-'));
writeKeyPair(na, join(dir, 'keys', 'device'));
writeKeyPair(na, join(dir, 'keys', 'centre'));
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

  const device = loadPrivateKey(na, join(dir, 'keys', 'device.key'));
  const centrePub = loadPublicKey(join(dir, 'keys', 'centre.pub'));
  const key = deviceSendKey(na, device, centrePub);
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
    nonce: na.randombytes_buf(24),
  });
  const good = () => seal(na, header(), compress(encodeRecords([{ n: seq, v: 1.5 }]), { compression: 'deflate', level: undefined }), key);

  const client = await mqtt.connectAsync(broker.url, { clientId: 'forger' });
  // The forger: a real header (any device id and key ids are public), then random bytes instead of ciphertext.
  const head = encodeHeader(header());
  const forged = Buffer.allocUnsafe(head.length + mib * 1024 * 1024);
  forged.set(head, 0);
  for (let o = head.length; o < forged.length; o += 1 << 26) randomFillSync(forged, o, Math.min(1 << 26, forged.length - o));
  const mark = stderr.length;
  const started = performance.now();
  await client.publishAsync('edge-agent/v1/gw-1/telemetry', forged, { qos: 1 });
  await waitFor(/rejected/, mark);
  const rejectedAfter = performance.now() - started;
  const afterReject = rss(pid);
  // Good batches after it: the receiver still works, and the forged message's memory is not kept.
  for (let i = 0; i < 20; i++) await client.publishAsync('edge-agent/v1/gw-1/telemetry', Buffer.from(good()), { qos: 1 });
  const lines = () => readFileSync(out, 'utf8').split('\n').filter(Boolean).length;
  while (lines() < 20) await new Promise((r) => setTimeout(r, 50));
  const afterGood = rss(pid);
  await client.endAsync();
  console.log(
    JSON.stringify(
      {
        forged_mib: mib,
        rejected_in_ms: Math.round(rejectedAfter),
        rss_idle: mb(idle),
        rss_after_reject: mb(afterReject),
        rss_after_20_good: mb(afterGood),
        peak_rss: mb(hwm(pid)),
        rejection: stderr
          .slice(mark)
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
