/**
 * What a batch in flight keeps alive while its PUBACK is awaited: at full speed an acknowledgement outlasts two
 * scavenges, so whatever the sender and the MQTT sink hold until then is promoted and freed only by a full
 * collection. The queue keeps the rows and mqtt.js its outgoing copy (what a reconnect sends again); the body
 * read from the queue and the sealed envelope handed to the sink must be garbage as soon as the publish is out.
 * The broker is stopped (SIGSTOP) so that the PUBACK cannot come while the test looks.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { getRandomValues } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import mqtt from 'mqtt';
import { NONCE_BYTES } from '../../agent/envelope/header.ts';
import { seal } from '../../agent/envelope/seal.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { silentLogger } from '../../agent/log.ts';
import { Queue } from '../../agent/queue/queue.ts';
import { Sender } from '../../agent/runtime/sender.ts';
import { mqttSink } from '../../drivers/sinks/mqtt/index.ts';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { until } from '../governor/pipeline.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let mosquitto: Mosquitto;
let dir: string;
before(async () => {
  mosquitto = await startMosquitto();
  dir = mkdtempSync(join(tmpdir(), 'sender-in-flight-'));
});
after(async () => {
  process.kill(mosquitto.pid, 'SIGCONT');
  await mosquitto.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('a batch awaiting its PUBACK keeps neither its body nor its sealed envelope alive, and is delivered once the broker answers', async () => {
  const queue = Queue.open(testQueueOptions(join(dir, 'queue.db'), { batchMaxBytes: 64 * 1024 }));
  const sink = await mqttSink.create(mqttSink.options.parse({ url: mosquitto.url, topic_prefix: 'in-flight' }), {
    ...driverEnv({ log: silentLogger, baseDir: dir }),
    device: 'gw-1',
  });
  await sink.connect();
  // A subscriber, so that the broker does not answer "no matching subscribers" (0x10, sent again by the sink).
  const subscriber = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 5 });
  let received = 0;
  subscriber.on('message', () => received++);
  await subscriber.subscribeAsync('in-flight/#', { qos: 1 });
  const key = getRandomValues(new Uint8Array(32));
  const bodies: WeakRef<Uint8Array>[] = [];
  const envelopes: WeakRef<Uint8Array>[] = [];
  const sender = new Sender(
    queue,
    sink,
    (batch) => {
      const header = {
        device: 'gw-1',
        stream: batch.stream,
        epoch: queue.epoch,
        seq: batch.seq,
        count: batch.count,
        created: batch.created,
        compression: batch.compression,
        deviceKeyId: new Uint8Array(8),
        centreKeyId: new Uint8Array(8),
        nonce: getRandomValues(new Uint8Array(NONCE_BYTES)),
      };
      const envelope = seal(header, batch.body, key);
      bodies.push(new WeakRef(batch.body));
      envelopes.push(new WeakRef(envelope));
      return envelope;
    },
    { device: 'gw-1', epoch: '00', maxInFlight: 4, writeTimeoutMs: 600_000, retry: { initialMs: 20, maxMs: 200 } },
    silentLogger,
  );
  try {
    await until(() => sink.connected, 'the sink connected');
    process.kill(mosquitto.pid, 'SIGSTOP');
    await queue.enqueue(
      'telemetry',
      Array.from({ length: 2_000 }, (_, i) => ({ ts: 1_700_000_000_000 + i, data: { sensor: `s-${i % 400}`, v: Math.random() * 1000 } })),
    );
    sender.start();
    await until(() => sender.stats().inFlight > 0, 'a batch written to the stopped broker');
    // Let the socket's write finish and the promise jobs settle: what is still reachable then waits for the PUBACK.
    await new Promise((resolve) => setTimeout(resolve, 100));
    gc();
    gc();
    assert.ok(bodies.length > 0);
    assert.equal(sender.stats().batchesSent, 0, 'no PUBACK can have come from a stopped broker');
    assert.equal(bodies.filter((ref) => ref.deref() !== undefined).length, 0, 'batch bodies still alive while their PUBACK is awaited');
    assert.equal(envelopes.filter((ref) => ref.deref() !== undefined).length, 0, 'sealed envelopes still alive while their PUBACK is awaited');

    process.kill(mosquitto.pid, 'SIGCONT');
    await sender.idle();
    assert.equal(sender.stats().recordsSent, 2_000);
    assert.equal(queue.hasUnsent(), false);
    assert.equal(sender.stats().retries, 0);
    await until(() => received === sender.stats().batchesSent, 'every batch at the subscriber');
  } finally {
    process.kill(mosquitto.pid, 'SIGCONT');
    await sender.stop(1_000);
    await sink.close();
    await subscriber.endAsync(true);
    queue.close();
  }
});
