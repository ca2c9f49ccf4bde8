/**
 * The centre's MQTT consumer refuses, at the protocol level, messages far larger than the receiver takes: with
 * MQTT 5 it tells the broker its Maximum Packet Size, so a hostile huge publish never reaches its memory, while
 * the messages after it still arrive. Against a real Mosquitto.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import mqtt from 'mqtt';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { silentLogger } from '../../agent/log.ts';
import type { IncomingMessage } from '../../agent/sdk/index.ts';
import { mqttSink } from '../../drivers/sinks/mqtt/index.ts';
import { type Mosquitto, startMosquitto } from '../../scripts/lib/mosquitto.ts';

let broker: Mosquitto;
before(async () => {
  broker = await startMosquitto();
});
after(async () => {
  await broker?.stop();
});

async function deliveredSizes(protocol: 4 | 5, maxMessageBytes: number): Promise<number[]> {
  const prefix = `limit-${protocol}`;
  const options = mqttSink.options.parse({ url: broker.url, topic_prefix: prefix, protocol_version: protocol });
  const got: IncomingMessage[] = [];
  let lastArrived!: () => void;
  const last = new Promise<void>((resolve) => (lastArrived = resolve));
  const consumer = await mqttSink.createConsumer(options, {
    ...driverEnv({ log: silentLogger, baseDir: '/' }),
    clientName: `limit-${protocol}`,
    maxMessageBytes,
  });
  await consumer.start(async (m) => {
    got.push(m);
    if (m.bytes.length === 3) lastArrived();
  });
  const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  try {
    // In order, QoS 1: a small one, a huge one, then a 3-byte marker that ends the wait.
    await publisher.publishAsync(`${prefix}/gw/s`, Buffer.alloc(100, 1), { qos: 1 });
    await publisher.publishAsync(`${prefix}/gw/s`, Buffer.alloc(4 * 1024 * 1024, 2), { qos: 1 });
    await publisher.publishAsync(`${prefix}/gw/s`, Buffer.alloc(3, 3), { qos: 1 });
    await last;
  } finally {
    await publisher.endAsync();
    await consumer.close();
  }
  return got.map((m) => m.bytes.length);
}

test('MQTT 5: a message far over maxMessageBytes is never sent to the consumer; the ones after it arrive', async () => {
  assert.deepEqual(await deliveredSizes(5, 64 * 1024), [100, 3]);
});

test('MQTT 3.1.1 has no such limit: the consumer gets the large message (the receiver then refuses it by size)', async () => {
  assert.deepEqual(await deliveredSizes(4, 64 * 1024), [100, 4 * 1024 * 1024, 3]);
});
