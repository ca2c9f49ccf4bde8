import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { decodeHeader } from '../../agent/envelope/header.ts';
import { encodeAck, verifyAck } from '../../agent/envelope/ack.ts';
import { compress, encodeRecords } from '../../agent/envelope/codec.ts';
import { seal } from '../../agent/envelope/seal.ts';
import { centreAckKey, deviceAckKey, deviceSendKey, keyId, loadPrivateKey, loadPublicKey, writeKeyPair } from '../../agent/keys/keys.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { jsonLines, runCli, until } from '../helpers/processes.ts';

interface Line {
  epoch: string;
  seq: number;
  record: { n: number };
}

/** The shared test config with the sink's acknowledged_by and sender settings, and a receiver output file. */
function config(dir: string, url: string, opts: { ackBy: 'centre' | 'broker'; total: number; rate: number; sender?: string; name?: string }) {
  const yaml = agentYaml(url, { sources: `  - { type: synthetic, name: gen, rate: ${opts.rate}, batch: 100, count: ${opts.total} }` })
    .replace(
      '  reconnect: { initial_delay: 50ms, max_delay: 500ms }\n',
      `  reconnect: { initial_delay: 50ms, max_delay: 500ms }\n  acknowledged_by: ${opts.ackBy}\n`,
    )
    .replace('sender:\n', `sender:\n  centre_ack_timeout: 1s\n  centre_ack_max_timeout: 3s\n${opts.sender ?? ''}`);
  return writeConfig(dir, `${yaml}  output: ${join(dir, 'received.jsonl')}\n`, opts.name);
}

/** The centre's side at log level info, so a test can wait for "subscribed". */
function centreConfig(dir: string, yaml: string) {
  return writeConfig(dir, yaml.replace('level: warn', 'level: info'), 'centre.yaml');
}

/** Records still in the gateway's queue file (read beside the running agent: WAL readers do not block it). */
function queuedRecords(dir: string): number {
  const path = join(dir, 'data', 'queue.db');
  if (!existsSync(path)) return -1; // not created yet
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT coalesce(sum(count), 0) FROM chunks').pluck().get() as number;
  } catch (err) {
    if (/no such table/.test(String(err))) return -1; // the agent is creating it
    throw err;
  } finally {
    db.close();
  }
}

/** Every record 1…total present; the only repeats are whole batches a SIGKILLed receiver wrote and never marked. */
function assertEveryRecord(lines: Line[], total: number, repeatedBatchesAllowed: number): void {
  const seen = new Map<number, number>();
  const repeated = new Set<string>();
  for (const line of lines) {
    const n = line.record.n;
    if (seen.has(n)) repeated.add(`${line.epoch}:${line.seq}`);
    seen.set(n, (seen.get(n) ?? 0) + 1);
  }
  const missing = Array.from({ length: total }, (_, i) => i + 1).filter((n) => !seen.has(n));
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} records missing`);
  assert.equal(seen.size, total);
  assert.ok(repeated.size <= repeatedBatchesAllowed, `records repeated in ${repeated.size} batches: ${[...repeated].join(', ')}`);
}

// The loss reported in issue 9: the receiver dies, the broker (no persistence) restarts and forgets the
// receiver's session with every batch it had queued and acknowledged. With acknowledged_by: centre those
// batches were never acknowledged by the centre, so the gateway still has them and sends them again.
test('acknowledged_by centre: a non-persistent broker restarted while the receiver is down loses nothing', async () => {
  const ws = await workspace();
  const broker = await startMosquitto({ persistence: false });
  const TOTAL = 20_000;
  const cfg = config(ws.dir, broker.url, { ackBy: 'centre', total: TOTAL, rate: 2_000 });
  const centre = centreConfig(ws.dir, cfg.yaml);
  const out = join(ws.dir, 'received.jsonl');
  let receiver = runCli(['receive', '--config', centre.path]);
  await receiver.stderrMatches(/"msg":"subscribed"/);
  const agent = runCli(['run', '--config', cfg.path]);
  // A spy on the batch topics counts what the broker takes while the receiver is gone.
  const spy = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0, clientId: 'spy' });
  let spied = 0;
  spy.on('message', () => spied++);
  await spy.subscribeAsync('edge-agent/v1/+/+', { qos: 1 });
  try {
    await until(
      () => jsonLines<Line>(out).length >= 2_000,
      'the first records at the receiver',
      60_000,
      () => agent.stderr(),
    );
    receiver.child.kill('SIGKILL');
    await receiver.exited;
    const atKill = spied;
    await until(() => spied >= atKill + 10, 'ten batches taken by the broker for the dead receiver', 60_000);
    await broker.stop(); // no persistence: the receiver's session and its queued batches are gone
    await broker.restart();
    // Nobody subscribes now: the broker answers 0x10 and the gateway keeps its batches.
    await agent.stderrMatches(/puback_no_subscribers/);
    receiver = runCli(['receive', '--config', centre.path]);
    await until(
      () => new Set(jsonLines<Line>(out).map((l) => l.record.n)).size >= TOTAL,
      'every record at the receiver',
      180_000,
      () => `have ${new Set(jsonLines<Line>(out).map((l) => l.record.n)).size}; agent: ${agent.stderr().slice(-1500)}`,
    );
    assertEveryRecord(jsonLines<Line>(out), TOTAL, 1);
    await until(() => queuedRecords(ws.dir) === 0, 'the queue to drain on the centre acknowledgements', 60_000);
  } finally {
    await spy.endAsync(true).catch(() => {});
    agent.child.kill('SIGTERM');
    receiver.child.kill('SIGTERM');
    await agent.exited;
    await receiver.exited;
    await broker.stop();
    ws.cleanup();
  }
});

// Before issue 9 mqtt.js reported a PUBACK with reason 0x10 as success and the rows were deleted.
test('acknowledged_by broker: a PUBACK "no matching subscribers" (0x10) is retried, not deleted', async () => {
  const ws = await workspace();
  const broker = await startMosquitto({ persistence: false });
  const TOTAL = 3_000;
  const cfg = config(ws.dir, broker.url, { ackBy: 'broker', total: TOTAL, rate: 0 });
  const out = join(ws.dir, 'received.jsonl');
  const agent = runCli(['run', '--config', cfg.path]);
  let receiver: ReturnType<typeof runCli> | undefined;
  try {
    // No receiver yet: every batch is answered 0x10.
    await agent.stderrMatches(/puback_no_subscribers/);
    await until(() => queuedRecords(ws.dir) === TOTAL, 'every record in the queue', 60_000);
    receiver = runCli(['receive', '--config', centreConfig(ws.dir, cfg.yaml).path]);
    await until(
      () => jsonLines<Line>(out).length >= TOTAL,
      'every record at the receiver',
      120_000,
      () => agent.stderr().slice(-1500),
    );
    const lines = jsonLines<Line>(out);
    assert.equal(lines.length, TOTAL, 'no record twice');
    assertEveryRecord(lines, TOTAL, 0);
  } finally {
    agent.child.kill('SIGTERM');
    receiver?.child.kill('SIGTERM');
    await agent.exited;
    await receiver?.exited;
    await broker.stop();
    ws.cleanup();
  }
});

// Before issue 9 a PUBACK "not authorized" (0x87) set the batch aside as refused: one ACL mistake at the broker
// deleted the whole queue, batch by batch. It is the broker's configuration, not the batch: the data waits.
test('acknowledged_by broker: a PUBACK "not authorized" (0x87) keeps the batches queued until the ACL is fixed', async () => {
  const ws = await workspace();
  const acl = join(ws.dir, 'acl');
  writeFileSync(acl, 'topic read #\n'); // anonymous clients may subscribe, not publish
  const broker = await startMosquitto({ persistence: false, extra: [`acl_file ${acl}`] });
  const TOTAL = 2_000;
  const cfg = config(ws.dir, broker.url, { ackBy: 'broker', total: TOTAL, rate: 0 });
  const out = join(ws.dir, 'received.jsonl');
  const receiver = runCli(['receive', '--config', centreConfig(ws.dir, cfg.yaml).path]);
  await receiver.stderrMatches(/subscribed/);
  const agent = runCli(['run', '--config', cfg.path]);
  try {
    await agent.stderrMatches(/puback_refused_by_configuration/);
    await until(() => queuedRecords(ws.dir) === TOTAL, 'every record in the queue', 60_000);
    assert.equal(jsonLines<Line>(out).length, 0, 'nothing got through the ACL');
    // The operator fixes the ACL; Mosquitto reloads it on SIGHUP.
    writeFileSync(acl, 'topic readwrite #\n');
    process.kill(broker.pid, 'SIGHUP');
    await until(
      () => jsonLines<Line>(out).length >= TOTAL,
      'every record at the receiver',
      120_000,
      () => agent.stderr().slice(-1500),
    );
    assertEveryRecord(jsonLines<Line>(out), TOTAL, 0);
  } finally {
    agent.child.kill('SIGTERM');
    receiver.child.kill('SIGTERM');
    await agent.exited;
    await receiver.exited;
    await broker.stop();
    ws.cleanup();
  }
});

// Whoever can publish on the broker can put bytes on a gateway's acknowledgement topic. None of these may
// delete a row: a wrong tag, another device's genuine acknowledgement, this device's for another queue epoch.
// The genuine one at the end shows the same path does delete when the acknowledgement is authentic.
test('acknowledged_by centre: forged, foreign and other-epoch acknowledgements delete nothing', async () => {
  const ws = await workspace();
  const broker = await startMosquitto({ persistence: false });
  const TOTAL = 2_000;
  // Every batch fits the window, so every one waits for the centre at once.
  const cfg = config(ws.dir, broker.url, { ackBy: 'centre', total: TOTAL, rate: 0, sender: '  max_in_flight: 100\n' });
  const centreKeys = loadPrivateKey(x25519, join(ws.dir, 'keys', 'centre.key'));
  const devicePub = loadPublicKey(join(ws.dir, 'keys', 'device.pub'));
  writeKeyPair(x25519, join(ws.dir, 'keys', 'other'));
  const otherPub = loadPublicKey(join(ws.dir, 'keys', 'other.pub'));
  // A subscriber stands in for the receiver, so the broker answers PUBACK 0 and batches wait for the centre.
  const spy = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0, clientId: 'spy' });
  const batches = new Map<number, number>(); // seq → records
  const published = () => [...batches.values()].reduce((a, b) => a + b, 0);
  let epoch: Uint8Array | undefined;
  let received = 0; // records, re-sends included
  spy.on('message', (_topic, payload) => {
    const { header } = decodeHeader(payload);
    epoch = header.epoch;
    batches.set(header.seq, header.count);
    received += header.count;
  });
  await spy.subscribeAsync('edge-agent/v1/+/+', { qos: 1 });
  let agent = runCli(['run', '--config', cfg.path]);
  const ackTopic = 'edge-agent/v1/gw-test/gen/ack';
  try {
    await until(
      () => published() >= TOTAL,
      'every batch published',
      60_000,
      () => agent.stderr(),
    );
    const ranges: [number, number][] = [[1, 1_000_000]];
    const mine = { device: 'gw-test', stream: 'gen', epoch: epoch!, deviceKeyId: keyId(devicePub), centreKeyId: keyId(centreKeys.publicKey), ranges };
    const forged = encodeAck(mine, new Uint8Array(randomBytes(32)));
    const otherDevices = encodeAck({ ...mine, device: 'gw-other', deviceKeyId: keyId(otherPub) }, centreAckKey(x25519, centreKeys, otherPub));
    const relabelled = encodeAck(mine, centreAckKey(x25519, centreKeys, otherPub)); // another device's key, this device's name
    const otherEpoch = encodeAck({ ...mine, epoch: new Uint8Array(8).fill(7) }, centreAckKey(x25519, centreKeys, devicePub));
    for (const bytes of [forged, otherDevices, relabelled, otherEpoch]) await spy.publishAsync(ackTopic, Buffer.from(bytes), { qos: 1 });
    await agent.stderrMatches(/ACK_AUTH_FAILED/);
    await agent.stderrMatches(/ACK_FOREIGN/);
    agent.child.kill('SIGTERM'); // a clean stop commits whatever was acknowledged
    assert.equal(await agent.exited, 0, agent.stderr());
    assert.equal(queuedRecords(ws.dir), TOTAL, 'no row deleted');

    // The control: the same queue, the same path, an authentic acknowledgement.
    const before = received;
    agent = runCli(['run', '--config', cfg.path]);
    await until(
      () => received >= before + TOTAL,
      'every batch sent again after the restart',
      60_000,
      () => agent.stderr(),
    );
    await spy.publishAsync(ackTopic, Buffer.from(encodeAck(mine, centreAckKey(x25519, centreKeys, devicePub))), { qos: 1 });
    await until(
      () => queuedRecords(ws.dir) === 0,
      'the authentic acknowledgement to empty the queue',
      60_000,
      () => agent.stderr(),
    );
  } finally {
    await spy.endAsync(true).catch(() => {});
    agent.child.kill('SIGTERM');
    await agent.exited;
    await broker.stop();
    ws.cleanup();
  }
});

// A lost acknowledgement heals only if the copy the gateway sends again is acknowledged again.
test('the receiver acknowledges a duplicate again, after writing the batch once', async () => {
  const ws = await workspace();
  const broker = await startMosquitto({ persistence: false });
  const cfg = config(ws.dir, broker.url, { ackBy: 'centre', total: 1, rate: 0 });
  const out = join(ws.dir, 'received.jsonl');
  const receiver = runCli(['receive', '--config', centreConfig(ws.dir, cfg.yaml).path]);
  const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0, clientId: 'fake-gateway' });
  try {
    await receiver.stderrMatches(/"msg":"subscribed"/);
    const device = loadPrivateKey(x25519, join(ws.dir, 'keys', 'device.key'));
    const centrePub = loadPublicKey(join(ws.dir, 'keys', 'centre.pub'));
    const acks: number[][] = [];
    client.on('message', (_topic, payload) => {
      const ack = verifyAck(payload, () => deviceAckKey(x25519, device, centrePub));
      acks.push(ack.ranges.flat());
    });
    await client.subscribeAsync('edge-agent/v1/gw-test/+/ack', { qos: 0 });
    const epoch = new Uint8Array(8).fill(3);
    const envelope = () =>
      seal(
        {
          device: 'gw-test',
          stream: 'gen',
          epoch,
          seq: 42,
          count: 2,
          created: Date.now(),
          compression: 'deflate',
          deviceKeyId: keyId(device.publicKey),
          centreKeyId: keyId(centrePub),
          nonce: new Uint8Array(randomBytes(24)),
        },
        compress(encodeRecords([{ n: 1 }, { n: 2 }]), { compression: 'deflate', level: 1 }),
        deviceSendKey(x25519, device, centrePub),
      );
    await client.publishAsync('edge-agent/v1/gw-test/gen', Buffer.from(envelope()), { qos: 1 });
    await until(
      () => acks.length >= 1,
      'the first acknowledgement',
      60_000,
      () => receiver.stderr(),
    );
    await client.publishAsync('edge-agent/v1/gw-test/gen', Buffer.from(envelope()), { qos: 1 });
    await until(
      () => acks.length >= 2,
      'the acknowledgement of the duplicate',
      60_000,
      () => receiver.stderr(),
    );
    assert.deepEqual(acks, [
      [42, 42],
      [42, 42],
    ]);
    assert.equal(jsonLines<Line>(out).length, 2, 'the duplicate is not written again');
  } finally {
    await client.endAsync(true).catch(() => {});
    receiver.child.kill('SIGTERM');
    await receiver.exited;
    await broker.stop();
    ws.cleanup();
  }
});

// A centre that never acknowledges holds the gateway at one window, in bytes too: with room for less than one
// batch, exactly one batch is out, sent again on each timeout, and no other leaves.
test('batches awaiting the centre count against sender.max_in_flight_bytes', async () => {
  const ws = await workspace();
  const broker = await startMosquitto({ persistence: false });
  const cfg = config(ws.dir, broker.url, { ackBy: 'centre', total: 2_000, rate: 0, sender: '  max_in_flight: 100\n  max_in_flight_bytes: 1B\n' });
  const spy = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0, clientId: 'spy' });
  const sent: number[] = [];
  spy.on('message', (_topic, payload) => sent.push(decodeHeader(payload).header.seq));
  await spy.subscribeAsync('edge-agent/v1/+/+', { qos: 1 });
  const agent = runCli(['run', '--config', cfg.path]);
  try {
    await until(
      () => queuedRecords(ws.dir) === 2_000,
      'every record queued',
      60_000,
      () => agent.stderr(),
    );
    await until(
      () => sent.length >= 3,
      'the first batch sent, then sent again twice',
      60_000,
      () => agent.stderr(),
    );
    assert.deepEqual(new Set(sent), new Set([1]), `only batch 1 leaves; sent: ${sent.join(',')}`);
  } finally {
    await spy.endAsync(true).catch(() => {});
    agent.child.kill('SIGTERM');
    await agent.exited;
    await broker.stop();
    ws.cleanup();
  }
});
