import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../agent/broker/embedded.ts';
import { createLogger } from '../../agent/log.ts';

// The embedded broker with real MQTT clients: optional credentials, a packet size limit applied before a
// packet's body is buffered, a warning when it listens beyond loopback, and the queues of persistent sessions.

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-broker-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const logFile = (name: string) => join(dir, `${name}.log`);
const logLines = (name: string) =>
  readFileSync(logFile(name), 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { level: string; msg: string; [k: string]: unknown });

/** Connects once (no reconnects) and says how it went: 'connected' or the error's message. */
async function tryConnect(url: string, options: mqtt.IClientOptions): Promise<string> {
  const client = mqtt.connect(url, { ...options, reconnectPeriod: 0, protocolVersion: 4, connectTimeout: 10_000 });
  const outcome = await new Promise<string>((resolve) => {
    client.once('connect', () => resolve('connected'));
    client.once('error', (err) => resolve(err.message));
    client.once('close', () => resolve('closed'));
  });
  await client.endAsync(true);
  return outcome;
}

describe('embedded broker: credentials', () => {
  let broker: EmbeddedBroker;
  before(async () => {
    broker = await startEmbeddedBroker('127.0.0.1', 0, { credentials: { username: 'gw', password: 'pa55' } });
  });
  after(() => broker.close());

  it('refuses a client without credentials or with a wrong password; accepts the right ones', async () => {
    assert.match(await tryConnect(broker.url, {}), /Bad username or password/i);
    assert.match(await tryConnect(broker.url, { username: 'gw', password: 'wrong' }), /Bad username or password/i);
    assert.match(await tryConnect(broker.url, { username: 'other', password: 'pa55' }), /Bad username or password/i);
    assert.equal(await tryConnect(broker.url, { username: 'gw', password: 'pa55' }), 'connected');
  });
});

describe('embedded broker: packet size', () => {
  let broker: EmbeddedBroker;
  before(async () => {
    broker = await startEmbeddedBroker('127.0.0.1', 0, {
      maxPacketBytes: 64 * 1024,
      log: createLogger('info', { format: 'json', destination: logFile('size') }),
    });
  });
  after(() => broker.close());

  it('closes a connection whose packet declares more than max_packet_bytes, as soon as the length is read', async () => {
    const port = Number(new URL(broker.url).port);
    const socket = tcpConnect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    // A CONNECT whose remaining length says 100 MB (varint ff ff ff 2f ≈ 100 MiB): only the header is sent.
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    socket.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x2f]));
    await closed;
    const refused = logLines('size').filter((l) => /larger than broker\.max_packet_bytes/.test(l.msg));
    assert.equal(refused.length, 1, 'logged once');
    assert.equal(refused[0]!.max_packet_bytes, 65_536);
  });

  it('a client publishing an oversized message is disconnected and subscribers never get it; small ones pass', async () => {
    const subscriber = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    const received: number[] = [];
    subscriber.on('message', (_topic, payload) => received.push(payload.length));
    await subscriber.subscribeAsync('big/#', { qos: 1 });
    const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    const gone = new Promise<void>((resolve) => publisher.once('close', () => resolve()));
    publisher.publish('big/x', Buffer.alloc(1024 * 1024), { qos: 0 });
    await gone;
    await publisher.endAsync(true);
    const small = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    await small.publishAsync('big/x', Buffer.alloc(1000), { qos: 1 });
    await small.endAsync();
    while (received.length === 0) await new Promise((resolve) => subscriber.once('message', resolve));
    await subscriber.endAsync();
    assert.deepEqual(received, [1000]);
  });
});

describe('embedded broker: listening address', () => {
  it('warns when it listens beyond loopback, naming the missing authentication; says nothing on loopback', async () => {
    const open = await startEmbeddedBroker('0.0.0.0', 0, { log: createLogger('info', { format: 'json', destination: logFile('wide') }) });
    await open.close();
    const local = await startEmbeddedBroker('127.0.0.1', 0, { log: createLogger('info', { format: 'json', destination: logFile('local') }) });
    await local.close();
    const warnings = logLines('wide').filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.msg, /listens beyond this machine .*WITHOUT authentication/);
    assert.equal(warnings[0]!.host, '0.0.0.0');
    assert.deepEqual(
      logLines('local').filter((l) => l.level === 'warn'),
      [],
    );
  });
});

describe('embedded broker: persistent sessions', () => {
  let broker: EmbeddedBroker;
  before(async () => {
    broker = await startEmbeddedBroker('127.0.0.1', 0);
  });
  after(() => broker.close());

  /** Connects `clientId` and collects the payloads it is sent (the 'message' handler is in place before CONNACK). */
  async function subscriber(clientId: string, clean: boolean) {
    const payloads: string[] = [];
    const client = mqtt.connect(broker.url, { clientId, clean, protocolVersion: 4, reconnectPeriod: 0 });
    client.on('message', (_topic, payload) => payloads.push(payload.toString()));
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    return { client, payloads };
  }

  it('queues QoS 1 and 2 messages while the subscriber is away, sends each once, and forgets them when it comes back clean', async () => {
    const publisher = await mqtt.connectAsync(broker.url, { clientId: 'sessions-pub', protocolVersion: 4 });
    try {
      const first = await subscriber('sessions-sub', false);
      await first.client.subscribeAsync({ 'sessions/+': { qos: 2 } });
      await first.client.endAsync();

      // Queued while away, then sent once at reconnect; a later reconnect sends nothing again.
      for (const [n, qos] of [
        [1, 1],
        [2, 2],
        [3, 2],
      ] as const)
        await publisher.publishAsync('sessions/a', `queued-${n}`, { qos });
      const back = await subscriber('sessions-sub', false);
      await waitUntil(
        () => back.payloads.length >= 3,
        () => `3 queued messages (have ${back.payloads})`,
      );
      await back.client.endAsync();
      const again = await subscriber('sessions-sub', false);
      await publisher.publishAsync('sessions/a', 'marker-1', { qos: 1 });
      await waitUntil(
        () => again.payloads.includes('marker-1'),
        () => `the marker (have ${again.payloads})`,
      );
      assert.deepEqual(back.payloads.sort(), ['queued-1', 'queued-2', 'queued-3']);
      assert.deepEqual(again.payloads, ['marker-1'], 'nothing sent a second time');
      await again.client.endAsync();

      // Queued while away, then the client comes back with a clean session: the session and its queue end
      // (aedes drains the queue of a clean connection without sending it).
      await publisher.publishAsync('sessions/a', 'orphan', { qos: 1 });
      const clean = await subscriber('sessions-sub', true);
      await clean.client.endAsync();
      const fresh = await subscriber('sessions-sub', false);
      await fresh.client.subscribeAsync({ 'sessions/+': { qos: 1 } });
      await publisher.publishAsync('sessions/a', 'marker-2', { qos: 1 });
      await waitUntil(
        () => fresh.payloads.includes('marker-2'),
        () => `the marker (have ${fresh.payloads})`,
      );
      assert.deepEqual(fresh.payloads, ['marker-2'], 'the old session’s queue is not sent to a new session');
      await fresh.client.endAsync();
    } finally {
      await publisher.endAsync();
    }
  });
});

/** Polls `test` until it holds; fails with `what()` after 10 s. */
async function waitUntil(test: () => boolean, what: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!test()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
