/**
 * Two receivers given one client id take the persistent session from each other in a loop, each getting part
 * of the batches and reconnecting all the time. Against a real Mosquitto, two of the MQTT sink's consumers
 * with one client id: the problem is reported as such, naming the receiver's likely cause rather than a
 * gateway's ("duplicate device id?").
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { silentLogger } from '../../agent/log.ts';
import type { Consumer, ProblemReporter } from '../../agent/sdk/index.ts';
import { mqttSink } from '../../drivers/sinks/mqtt/index.ts';
import { type Mosquitto, startMosquitto } from '../../scripts/lib/mosquitto.ts';

let broker: Mosquitto;
before(async () => {
  broker = await startMosquitto();
});
after(async () => {
  await broker?.stop();
});

test('two consumers with one client id: reported as two receivers sharing a client id', { timeout: 60_000 }, async () => {
  const reports: { kind: string; message: string; fields: Record<string, unknown> }[] = [];
  const { promise: reported, resolve } = Promise.withResolvers<void>();
  const problems: ProblemReporter = {
    report: (kind, message, fields = {}) => {
      reports.push({ kind, message, fields });
      resolve();
    },
  };
  const options = mqttSink.options.parse({
    url: broker.url,
    topic_prefix: 'twin-receivers',
    client_id: 'centre-1',
    reconnect: { initial_delay: '20ms', max_delay: '100ms' },
  });
  const env = { ...driverEnv({ log: silentLogger, baseDir: '/' }), problems, clientName: 'edge-receiver' };
  const consumers: Consumer[] = [await mqttSink.createConsumer(options, env), await mqttSink.createConsumer(options, env)];
  try {
    for (const c of consumers) await c.start(async () => {});
    await reported;
  } finally {
    for (const c of consumers) await c.close();
  }
  const first = reports[0]!;
  assert.equal(first.kind, 'client_id_taken_over');
  assert.match(first.message, /client id centre-1 \(two receivers with one client id\?/);
  assert.equal(first.fields.client_id, 'centre-1');
});
