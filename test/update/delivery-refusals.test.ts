/**
 * Self-update manifests, timestamps and chunks that must be refused, against the real executable running as
 * the device on a real Mosquitto: each refusal carries its attack-typed reason on the retained update report,
 * nothing is staged, and the device keeps forwarding records the whole time. Ends with the device's clock set
 * 2 days back: an old timestamp and an old manifest that the wrong clock would take are still refused.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { rfc3339 } from '../../agent/trust/index.ts';
import { type PreparedRelease, prepareRelease } from '../../agent/update/manifest-sign.ts';
import { encodeFrame, LIST_SLICE_BYTES, parseRequest } from '../../agent/update/transfer-protocol.ts';
import { builtExecutable } from '../helpers/executable.ts';
import { type AgentProcess, makeOperator, type Operator, PREFIX, signedRevocations, until, Watcher } from '../helpers/fleet.ts';
import { DEVICE_TOPICS, resigned, type SignedRelease, startDevice, type UpdateDevice, updateDevice } from '../helpers/update-delivery.ts';
import { readFileSync, openSync, readSync, closeSync } from 'node:fs';

const DEVICE = 'gw-upd';
const t = DEVICE_TOPICS(DEVICE);
let exe: string;
let broker: Mosquitto;
let op: Operator;
let device: UpdateDevice;
let proc: AgentProcess;
let watcher: Watcher;
let prepared: PreparedRelease;
let runningVersion: string;

before(async () => {
  exe = builtExecutable('linux-x64');
  runningVersion = String(JSON.parse(readFileSync('package.json', 'utf8')).version);
  broker = await startMosquitto({ persistence: true });
  op = makeOperator();
  // Committed release counter 5: a manifest with a lower counter is an older version.
  device = await updateDevice(broker.url, DEVICE, op, { version: '0.0.9', executable: '/bin/true', release: 5 });
  watcher = await Watcher.connect(broker.url, [t.report, t.status, t.data]);
  proc = startDevice(device.config, { executable: exe, env: { EDGE_AGENT_UPDATE_LOCAL_SOURCE: device.emptySource } });
  await until(() => watcher.json(t.status)?.online === true, 'the device online', 30_000, proc.stderr);
  prepared = await prepareRelease({ path: exe, version: '0.9.0', release: 6, arch: 'x64', target: { device: DEVICE }, validMs: 3_600_000 });
});

after(async () => {
  proc?.child.kill('SIGKILL');
  await proc?.exited;
  await watcher?.close();
  await broker?.stop();
});

const reportsSince = (mark: number) =>
  watcher.messages
    .slice(mark)
    .filter((m) => m.topic === t.report && m.payload.length > 0)
    .map((m) => JSON.parse(m.payload.toString()) as Record<string, unknown>);

/** Publishes (timestamp, then manifest) and waits for the refusal; returns its report. */
async function refusedWith(reason: string, publish: () => Promise<void>): Promise<Record<string, unknown>> {
  const mark = watcher.messages.length;
  await publish();
  await until(
    () => reportsSince(mark).some((r) => r.outcome === 'refused'),
    `a refusal (${reason})`,
    30_000,
    () => JSON.stringify(reportsSince(mark)) + proc.stderr().slice(-2000),
  );
  const report = reportsSince(mark).find((r) => r.outcome === 'refused')!;
  assert.equal(report.reason, reason, JSON.stringify(report));
  return report;
}

async function push(release: SignedRelease | Record<string, unknown>, timestamp?: unknown): Promise<void> {
  if (timestamp) await watcher.client.publishAsync(t.timestamp, JSON.stringify(timestamp), { qos: 1, retain: true });
  await watcher.client.publishAsync(t.manifest, JSON.stringify('envelope' in release ? release.envelope : release), { qos: 1, retain: true });
}

const dataCount = () => watcher.messages.filter((m) => m.topic.startsWith(`edge-agent/v1/${DEVICE}/`)).length;

test('forged, foreign and mismatched manifests are refused with their reasons', async () => {
  const good = resigned(op, prepared, { version: '0.9.1' });
  const tampered = {
    ...good.envelope,
    payload: Buffer.from(Buffer.from(good.envelope.payload, 'base64').toString().replace('"0.9.1"', '"0.9.2"')).toString('base64'),
  };
  await refusedWith('bad_signature', () => push(tampered));
  await refusedWith('unknown_key', () => push(resigned(makeOperator('mallory'), prepared, { version: '0.9.3' })));
  const bob = makeOperator('bob', op.root);
  await watcher.client.publishAsync(`${PREFIX}/trust/revocations`, JSON.stringify(signedRevocations(op.root, 1, [bob.keyId])), { qos: 1, retain: true });
  await refusedWith('revoked_key', () => push(resigned(bob, prepared, { version: '0.9.4' })));
  await refusedWith('wrong_arch', () => push(resigned(op, prepared, { version: '0.9.5', arch: 'arm64' })));
  await refusedWith('wrong_target', () => push(resigned(op, prepared, { version: '0.9.6', target: { device: 'gw-other' } })));
  await refusedWith('release_counter_lower', () => push(resigned(op, prepared, { version: '0.8.0', release: 4 })));
  await refusedWith('same_version', () => push(resigned(op, prepared, { version: runningVersion })));
  const past = Date.now() - 7_200_000;
  await refusedWith('expired', () =>
    push(resigned(op, prepared, { version: '0.9.7', issued: rfc3339(new Date(past)), expires: rfc3339(new Date(past + 3_600_000)) })),
  );
  await refusedWith('oversize', () =>
    push(resigned(op, prepared, { version: '0.9.8', size: 2 ** 31, chunks: { ...prepared.document.chunks, count: 40_000 } })),
  );
  assert.deepEqual(device.releases.state().trial, undefined);
});

test('a stale timestamp is refused, and without a fresh one nothing is downloaded', async () => {
  const release = resigned(op, prepared, { version: '0.9.9' });
  const old = Date.now() - 7_200_000;
  await refusedWith('stale_timestamp', () => push(release, release.timestamp(3_600_000, old, old)));
  assert.equal(reportsSince(0).filter((r) => r.version === '0.9.9' && r.outcome === 'downloading').length, 0);
});

/** Answers the device's requests: the chunk list truthfully, every chunk as `mangle` makes it. */
async function evilServer(release: SignedRelease, mangle: (data: Buffer) => Buffer): Promise<() => Promise<void>> {
  const client = (await Watcher.connect(broker.url, [`${PREFIX}/${DEVICE}/update/req`])).client;
  const fd = openSync(exe, 'r');
  client.on('message', (_topic, payload, packet) => {
    const request = parseRequest(payload);
    if (!request || request.manifest !== release.id) return;
    for (const index of request.chunks) {
      let data: Buffer;
      if (request.object === 'list') data = release.list.subarray(index * LIST_SLICE_BYTES, (index + 1) * LIST_SLICE_BYTES);
      else {
        const chunk = release.chunks[index]!;
        data = Buffer.alloc(chunk.length);
        readSync(fd, data, 0, chunk.length, chunk.offset);
        data = mangle(data);
      }
      void client.publishAsync(packet.properties?.responseTopic ?? `${PREFIX}/${DEVICE}/update/chunk`, encodeFrame(release.id, request.object, index, data), {
        qos: 1,
        properties: packet.properties?.correlationData ? { correlationData: packet.properties.correlationData } : {},
      });
    }
  });
  return async () => {
    closeSync(fd);
    await client.endAsync(true);
  };
}

test('a chunk whose hash does not match, and a chunk longer than declared, stop the download', async () => {
  const flipped = resigned(op, prepared, { version: '0.10.0', release: 7 });
  let stop = await evilServer(flipped, (data) => {
    data[data.length >> 1]! ^= 0x01;
    return data;
  });
  await refusedWith('chunk_hash_mismatch', () => push(flipped, flipped.timestamp()));
  await stop();
  const longer = resigned(op, prepared, { version: '0.10.1', release: 8 });
  stop = await evilServer(longer, (data) => Buffer.concat([data, Buffer.alloc(512, 0x41)]));
  await refusedWith('oversize', () => push(longer, longer.timestamp()));
  await stop();
  assert.deepEqual(device.releases.state().trial, undefined);
});

test('a timestamp that stops being renewed freezes the device (status), and it says why it waits', async () => {
  const release = resigned(op, prepared, { version: '0.10.2', release: 9 });
  const mark = watcher.messages.length;
  // Short-lived and the newest: no chunk server runs, so the download cannot finish before it expires.
  await push(release, release.timestamp(3_000));
  await until(
    () => (watcher.json(t.status)?.update_delivery as { freeze?: boolean } | undefined)?.freeze === true,
    'the status to say freeze',
    20_000,
    () => JSON.stringify(watcher.json(t.status)?.update_delivery),
  );
  assert.ok(reportsSince(mark).some((r) => r.version === '0.10.2'));
});

test('with the clock set 2 days back, an old timestamp and an old manifest are still refused; forwarding never stopped', async () => {
  const before = dataCount();
  proc.child.kill('SIGTERM');
  await proc.exited;
  proc = startDevice(device.config, {
    executable: exe,
    env: { EDGE_AGENT_UPDATE_LOCAL_SOURCE: device.emptySource, EDGE_AGENT_CLOCK_OFFSET_S: String(-2 * 86_400) },
  });
  await until(
    () => watcher.json(t.status)?.online === true && proc.stderr().includes('fleet control connection up'),
    'the device online again',
    30_000,
    proc.stderr,
  );
  const twoDaysAgo = Date.now() - 2 * 86_400_000;
  // Valid by the device's wrong clock, signed when that was the time: refused all the same.
  const release = resigned(op, prepared, {
    version: '0.11.0',
    release: 10,
    issued: rfc3339(new Date(twoDaysAgo - 1_000)),
    expires: rfc3339(new Date(twoDaysAgo + 3_600_000)),
  });
  await refusedWith('stale_timestamp', () => push(release, release.timestamp(3_600_000, twoDaysAgo, twoDaysAgo)));
  await refusedWith('expired', () => push(release));
  await until(() => dataCount() > before + 3, 'records still forwarded', 30_000);
  assert.equal(proc.child.exitCode, null);
  assert.deepEqual(device.releases.state().trial, undefined);
  assert.equal(device.releases.state().committed, '0.0.9');
});
