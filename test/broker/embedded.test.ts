import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../agent/broker/embedded.ts';
import { createLogger } from '../../agent/log.ts';
import { Telemetry, type Counter } from '../../agent/telemetry/registry.ts';

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

describe('embedded broker: bounded holdings', () => {
  const MiB = 1024 * 1024;
  let broker: EmbeddedBroker;
  const telemetry = new Telemetry();
  before(async () => {
    broker = await startEmbeddedBroker('127.0.0.1', 0, {
      maxPacketBytes: 64 * 1024,
      queueLimits: { maxBytesPerClient: MiB, maxBytes: 4 * MiB },
      retainedLimits: { maxCount: 3, maxBytes: 4000 },
      unreleasedLimits: { maxBytesPerClient: 20_000, maxBytes: MiB },
      telemetry,
      log: createLogger('info', { format: 'json', destination: logFile('bounded') }),
    });
  });
  after(() => broker.close());
  const counter = (name: string) => telemetry.get(name) as Counter;

  /** Heap and buffers held after a full collection: what the broker (in this process) keeps. */
  function heldBytes(): number {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    gc();
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    return heapUsed + arrayBuffers;
  }

  it('a persistent subscriber away while 64 MiB are published: the broker holds 1 MiB for it, drops the oldest (counted), and sends it the newest in order once', async () => {
    const topic = 'bounded/data';
    const away = await mqtt.connectAsync(broker.url, { clientId: 'bounded-sub', clean: false, protocolVersion: 4, reconnectPeriod: 0 });
    await away.subscribeAsync({ [topic]: { qos: 1 } });
    await away.endAsync();
    const before = heldBytes();

    // 4096 messages of 16 KiB, each numbered; published 64 at a time (QoS 1: each acknowledged once queued).
    const COUNT = 4096;
    const payload = (n: number) => Buffer.concat([Buffer.from(`${String(n).padStart(8, '0')}:`), Buffer.alloc(16 * 1024 - 9, n % 251)]);
    const publisher = await mqtt.connectAsync(broker.url, { clientId: 'bounded-pub', protocolVersion: 4, reconnectPeriod: 0 });
    let largest = 0;
    for (let n = 1; n <= COUNT; n += 64) {
      const window: Promise<unknown>[] = [];
      for (let i = n; i < n + 64 && i <= COUNT; i++) window.push(publisher.publishAsync(topic, payload(i), { qos: 1 }));
      await Promise.all(window);
      largest = Math.max(largest, broker.holdings.queues.bytes('bounded-sub'));
    }
    await publisher.endAsync();
    // The broker acknowledges a QoS 1 message before it queues it: wait until the last one is queued.
    const dropped = counter('edge_broker_queue_dropped_total');
    const accounted = () => dropped.value({ reason: 'client_bytes' }) + broker.holdings.queues.size('bounded-sub');
    await waitUntil(
      () => accounted() === COUNT,
      () => `every message queued or dropped (${accounted()} of ${COUNT})`,
    );
    const grown = heldBytes() - before;

    const kept = broker.holdings.queues.size('bounded-sub');
    assert.ok(largest <= MiB, `the queue held ${largest} bytes at most (bound ${MiB})`);
    assert.ok(broker.holdings.queues.bytes('bounded-sub') <= MiB);
    assert.ok(kept > 0 && kept < 64, `${kept} messages of 16 KiB fit in 1 MiB`);
    // Unbounded, the same run grows the process by about 65 MiB.
    assert.ok(grown < 16 * MiB, `the process grew by ${(grown / MiB).toFixed(1)} MiB after 64 MiB published for a subscriber away`);
    assert.equal(dropped.value({ reason: 'total_bytes' }), 0);
    const logged = logLines('bounded').filter((l) => /queue is full \(broker\.max_queued_bytes_per_client\)/.test(l.msg));
    assert.ok(logged.length >= 1 && logged.length <= 3, `the drops are logged rate-limited (${logged.length} lines for ${COUNT - kept} drops)`);
    assert.equal(logged[0]!.client, 'bounded-sub');

    // Back: the newest `kept` messages, in publishing order, each once; then the queue is empty.
    const received: number[] = [];
    const back = mqtt.connect(broker.url, { clientId: 'bounded-sub', clean: false, protocolVersion: 4, reconnectPeriod: 0 });
    back.on('message', (_topic, message) => received.push(Number(message.subarray(0, 8).toString())));
    await waitUntil(
      () => received.length >= kept,
      () => `${kept} queued messages (have ${received.length})`,
    );
    const marker = await mqtt.connectAsync(broker.url, { clientId: 'bounded-marker', protocolVersion: 4, reconnectPeriod: 0 });
    await marker.publishAsync(topic, payload(COUNT + 1), { qos: 1 });
    await marker.endAsync();
    await waitUntil(
      () => received.includes(COUNT + 1),
      () => 'the marker',
    );
    await back.endAsync();
    const newest = Array.from({ length: kept }, (_, i) => COUNT - kept + 1 + i);
    assert.deepEqual(received, [...newest, COUNT + 1]);
    await waitUntil(
      () => broker.holdings.queues.bytes() === 0,
      () => `an empty queue (${broker.holdings.queues.bytes()} bytes held)`,
    );
  });

  it('past the bounds of count and bytes a retained message is delivered but not kept, counted; replacing or clearing one still works', async () => {
    const publisher = await mqtt.connectAsync(broker.url, { clientId: 'retained-pub', protocolVersion: 4, reconnectPeriod: 0 });
    const live = await mqtt.connectAsync(broker.url, { clientId: 'retained-live', protocolVersion: 4, reconnectPeriod: 0 });
    const liveGot: string[] = [];
    live.on('message', (t) => liveGot.push(t));
    await live.subscribeAsync('kept/#', { qos: 1 });
    for (const name of ['a', 'b', 'c', 'd', 'e']) await publisher.publishAsync(`kept/${name}`, `value-${name}`, { qos: 1, retain: true });
    await publisher.publishAsync('kept/a', 'value-a2', { qos: 1, retain: true }); // replaces, within the bounds
    await publisher.publishAsync('kept/b', '', { qos: 1, retain: true }); // clears kept/b
    await publisher.publishAsync('kept/f', 'value-f', { qos: 1, retain: true }); // fits again
    await publisher.publishAsync('kept/c', Buffer.alloc(4000), { qos: 1, retain: true }); // past 4000 bytes
    await waitUntil(
      () => liveGot.filter((t) => t === 'kept/c').length === 2,
      () => `live delivery of every message (have ${liveGot})`,
    );

    const late = mqtt.connect(broker.url, { clientId: 'retained-late', protocolVersion: 4, reconnectPeriod: 0 });
    const retained = new Map<string, string>();
    late.on('message', (t, message, packet) => {
      if (packet.retain) retained.set(t, message.toString());
    });
    await new Promise<void>((resolve) => late.once('connect', () => resolve()));
    await late.subscribeAsync('kept/#', { qos: 1 });
    let markerSeen = false;
    late.on('message', (t) => {
      if (t === 'kept/marker') markerSeen = true;
    });
    await publisher.publishAsync('kept/marker', 'm', { qos: 1 });
    await waitUntil(
      () => retained.size >= 3 && markerSeen,
      () => `the retained messages and the marker (have ${[...retained.keys()]})`,
    );
    await Promise.all([late.endAsync(), live.endAsync(), publisher.endAsync()]);
    assert.deepEqual(Object.fromEntries(retained), { 'kept/a': 'value-a2', 'kept/c': 'value-c', 'kept/f': 'value-f' });
    const refused = counter('edge_broker_retained_refused_total');
    assert.deepEqual(refused.by('reason'), { retained_count: 2, retained_bytes: 1 });
    assert.equal(broker.holdings.retained.count, 3);
  });
});

describe('embedded broker: a queue bound below one packet', () => {
  it('is raised to one packet of max_packet_bytes: the largest message allowed can always be queued', async () => {
    const broker = await startEmbeddedBroker('127.0.0.1', 0, { maxPacketBytes: 64 * 1024, queueLimits: { maxBytesPerClient: 1000, maxBytes: 1000 } });
    try {
      const away = await mqtt.connectAsync(broker.url, { clientId: 'small-bound', clean: false, protocolVersion: 4, reconnectPeriod: 0 });
      await away.subscribeAsync({ 'small/+': { qos: 1 } });
      await away.endAsync();
      const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
      for (let n = 1; n <= 3; n++) await publisher.publishAsync('small/x', Buffer.alloc(30 * 1024, n), { qos: 1 });
      await publisher.endAsync();
      // 64 KiB + 256 bytes hold two messages of 30 KiB (each counted with its topic and 256 bytes).
      await waitUntil(
        () => broker.holdings.queues.size('small-bound') === 2 && broker.holdings.queues.bytes() > 60 * 1024,
        () => `two messages queued (have ${broker.holdings.queues.size('small-bound')})`,
      );
    } finally {
      await broker.close();
    }
  });
});

describe('embedded broker: subscriptions per client', () => {
  it('past max_subscriptions_per_client a new filter is refused in the SUBACK (counted), in one SUBSCRIBE or later; held ones work', async () => {
    const telemetry = new Telemetry();
    const broker = await startEmbeddedBroker('127.0.0.1', 0, { maxSubscriptionsPerClient: 3, telemetry });
    const client = await mqtt.connectAsync(broker.url, { clientId: 'many-subs', clean: false, protocolVersion: 4, reconnectPeriod: 0 });
    /** The SUBACK's return codes (mqtt.js rejects a SUBACK holding a refusal, with the packet). */
    const granted = (filters: Record<string, { qos: 0 | 1 | 2 }>) =>
      client.subscribeAsync(filters).then(
        (grants) => grants.map((g) => g.qos),
        (err: { packet?: { granted: number[] } }) => {
          if (!err.packet) throw err;
          return err.packet.granted;
        },
      );
    try {
      const first = await granted({ 'f/1': { qos: 1 }, 'f/2': { qos: 1 }, 'f/3': { qos: 1 }, 'f/4': { qos: 1 } });
      assert.deepEqual(first, [1, 1, 1, 128], 'the fourth filter of one SUBSCRIBE is refused');
      const again = await granted({ 'f/1': { qos: 0 }, 'f/5': { qos: 1 } });
      assert.deepEqual(again, [0, 128], 'a held filter may change, a new one is refused');
      await client.unsubscribeAsync('f/3');
      const freed = await granted({ 'f/6': { qos: 1 } });
      assert.deepEqual(freed, [1], 'an unsubscribed filter frees its place');
      assert.equal((telemetry.get('edge_broker_subscriptions_refused_total') as Counter).value(), 2);
    } finally {
      await client.endAsync();
      await broker.close();
    }
  });
});

describe('embedded broker: QoS 2 messages not released', () => {
  it('a publisher that withholds PUBREL is refused past its bound (connection closed, counted); releasing them frees the bound', async () => {
    const telemetry = new Telemetry();
    // The bound is never below one packet: packets of 16 KiB at most leave it at 20,000 bytes.
    const broker = await startEmbeddedBroker('127.0.0.1', 0, {
      maxPacketBytes: 16 * 1024,
      unreleasedLimits: { maxBytesPerClient: 20_000, maxBytes: 1024 * 1024 },
      telemetry,
    });
    const subscriber = await mqtt.connectAsync(broker.url, { clientId: 'unreleased-sub', protocolVersion: 4, reconnectPeriod: 0 });
    const received: number[] = [];
    subscriber.on('message', (_t, payload) => received.push(payload.readUInt16BE(0)));
    await subscriber.subscribeAsync('q2/data', { qos: 2 });
    try {
      /** A raw MQTT 3.1.1 connection (a persistent session) that answers nothing by itself: PUBREL is the test's to send. */
      async function rawSession() {
        const socket = tcpConnect(Number(new URL(broker.url).port), '127.0.0.1');
        const parser = mqttPacket.parser({ protocolVersion: 4 });
        const packets: mqttPacket.Packet[] = [];
        parser.on('packet', (p) => packets.push(p));
        socket.on('data', (chunk) => parser.parse(chunk));
        socket.on('error', () => {});
        const state = { closed: false };
        const closed = new Promise<void>((resolve) =>
          socket.once('close', () => {
            state.closed = true;
            resolve();
          }),
        );
        socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'unreleased-pub', clean: false, keepalive: 0 }));
        await waitUntil(
          () => packets.some((p) => p.cmd === 'connack'),
          () => 'CONNACK',
        );
        return { socket, packets, closed, state };
      }
      const first = await rawSession();
      // Each message counts 1000 + 7 (topic) + 256 bytes: 15 fit in 20,000 bytes, the 16th does not.
      // One at a time: a refusal closes the connection, and with it PUBRECs not yet written.
      for (let id = 1; id <= 16; id++) {
        const payload = Buffer.alloc(1000);
        payload.writeUInt16BE(id, 0);
        first.socket.write(mqttPacket.generate({ cmd: 'publish', topic: 'q2/data', payload, qos: 2, messageId: id, retain: false, dup: false }));
        if (id < 16)
          await waitUntil(
            () => first.packets.some((p) => p.cmd === 'pubrec' && p.messageId === id),
            () => `PUBREC ${id}`,
          );
      }
      await waitUntil(
        () => first.state.closed,
        () => 'the connection closed by the broker',
      );
      const pubrecs = first.packets.filter((p) => p.cmd === 'pubrec').map((p) => (p as mqttPacket.IPubrecPacket).messageId);
      assert.deepEqual(
        pubrecs,
        Array.from({ length: 15 }, (_, i) => i + 1),
        'the 16th is not acknowledged',
      );
      assert.deepEqual((telemetry.get('edge_broker_unreleased_refused_total') as Counter).by('reason'), { client_bytes: 1 });
      assert.equal(broker.holdings.unreleased.bytes('unreleased-pub'), 15 * 1263);
      await waitUntil(
        () => received.length === 15,
        () => `15 messages delivered (have ${received.length})`,
      );

      // Back on its session: releasing what it holds frees the bound, and the 16th goes through.
      const second = await rawSession();
      for (let id = 1; id <= 15; id++) second.socket.write(mqttPacket.generate({ cmd: 'pubrel', messageId: id }));
      await waitUntil(
        () => second.packets.filter((p) => p.cmd === 'pubcomp').length === 15,
        () => '15 PUBCOMPs',
      );
      assert.equal(broker.holdings.unreleased.bytes(), 0);
      const payload = Buffer.alloc(1000);
      payload.writeUInt16BE(16, 0);
      second.socket.write(mqttPacket.generate({ cmd: 'publish', topic: 'q2/data', payload, qos: 2, messageId: 16, retain: false, dup: true }));
      await waitUntil(
        () => second.packets.some((p) => p.cmd === 'pubrec'),
        () => 'PUBREC of the 16th',
      );
      second.socket.write(mqttPacket.generate({ cmd: 'pubrel', messageId: 16 }));
      await waitUntil(
        () => received.length === 16,
        () => `16 messages delivered (have ${received.length})`,
      );
      assert.deepEqual(
        received,
        Array.from({ length: 16 }, (_, i) => i + 1),
      );
      second.socket.end();
      await second.closed;
    } finally {
      await subscriber.endAsync();
      await broker.close();
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

describe('embedded broker: connections', () => {
  it('past max_connections a new connection is closed as it arrives (counted); once one leaves, another is taken', async () => {
    const telemetry = new Telemetry();
    const broker = await startEmbeddedBroker('127.0.0.1', 0, { maxConnections: 3, telemetry });
    const clients: mqtt.MqttClient[] = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await mqtt.connectAsync(broker.url, { clientId: `c${i}`, protocolVersion: 4, reconnectPeriod: 0 }));
      assert.notEqual(await tryConnect(broker.url, { clientId: 'c3' }), 'connected', 'the fourth connection is closed');
      assert.equal((telemetry.get('edge_broker_connections_refused_total') as Counter).value(), 1);
      // The three held ones still work.
      await clients[0]!.subscribeAsync('t', { qos: 1 });
      const got = new Promise<string>((resolve) => clients[0]!.once('message', (_t, p) => resolve(p.toString())));
      await clients[1]!.publishAsync('t', 'still here', { qos: 1 });
      assert.equal(await got, 'still here');
      await clients.pop()!.endAsync();
      // The server counts a connection until its socket has closed: try until the freed place is taken.
      let outcome = '';
      for (let attempt = 0; attempt < 50 && outcome !== 'connected'; attempt++) outcome = await tryConnect(broker.url, { clientId: 'c4' });
      assert.equal(outcome, 'connected', 'a place freed by a client that left is taken again');
    } finally {
      for (const c of clients) await c.endAsync();
      await broker.close();
    }
  });
});
