import { it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
// MQTT.js loaded the agent's way, before anything else here loads it (the order is what the fix depends on).
import { connectMqtt } from '../../agent/util/mqtt-client.ts';
import { mqttConnectOptions } from '../../agent/util/mqtt-url.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes of ArrayBuffers alive after full collections (the pool's slabs among them). */
function liveArrayBufferBytes(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

/** Takes enough small Buffers from Node's shared pool that the next pooled allocation starts a new slab. */
function churnPool(): void {
  for (let taken = 0; taken <= Buffer.poolSize; taken += 20_000) Buffer.allocUnsafe(20_000);
}

// A publisher's packets differ in length, and the agent's other code takes from the Buffer pool between them.
// mqtt-packet kept each length's encoding as a view of the pool slab of the moment: one slab (64 KiB on Node 24)
// held for the life of the process per length. 300 lengths would hold ≈19 MiB that way.
it('publishing packets of 300 different lengths holds no pool slabs', async () => {
  const client = connectMqtt(mqttConnectOptions('mqtt://127.0.0.1:1883', { clientId: `lengths-${process.pid}`, reconnectPeriod: 0 }));
  try {
    await new Promise<void>((connected, failed) => {
      client.once('connect', () => connected());
      client.once('error', failed);
    });
    const topic = `edge-agent-test/lengths/${process.pid}`;
    await client.publishAsync(topic, Buffer.alloc(10), { qos: 1 });
    const before = liveArrayBufferBytes();
    for (let n = 0; n < 300; n++) {
      churnPool();
      await client.publishAsync(topic, Buffer.alloc(1_000 + n), { qos: 1 });
    }
    const grown = liveArrayBufferBytes() - before;
    assert.ok(grown < 2 * 1024 * 1024, `${(grown / 1024).toFixed(0)} KiB of ArrayBuffers still alive after 300 publishes`);
  } finally {
    await client.endAsync(true);
  }
});
