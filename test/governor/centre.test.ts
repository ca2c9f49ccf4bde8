import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { governorSchema } from '../../agent/config/governor-schema.ts';
import { Governor } from '../../agent/governor/governor.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { silentLogger } from '../../agent/log.ts';
import { Telemetry } from '../../agent/telemetry/registry.ts';
import { mqttSink } from '../../drivers/sinks/mqtt/index.ts';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { until } from './pipeline.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test("the centre gate: bulk waits until the receiver's retained online state says it listens, and again once it leaves", async () => {
  const mosquitto = await startMosquitto();
  cleanups.push(() => mosquitto.stop());
  const dir = mkdtempSync(join(tmpdir(), 'governor-centre-'));
  const telemetry = new Telemetry();
  const governor = new Governor(governorSchema.parse({ classes: { backlog: 'bulk' }, gates: { centre: {} } })!, { dataDir: dir, telemetry, log: silentLogger });
  governor.start();
  cleanups.push(() => governor.stop());
  const env = driverEnv({ log: silentLogger, baseDir: dir });
  const sink = await mqttSink.create(mqttSink.options.parse({ url: mosquitto.url }), { ...env, device: 'gw-c', centreOnline: governor.centreOnline });
  await sink.connect();
  cleanups.push(() => sink.close());
  await until(() => sink.connected, 'sink connected');
  assert.deepEqual(governor.hold('backlog'), { reason: 'centre', detail: 'centre: no word from the receiver yet' });
  assert.equal(governor.hold('telemetry'), undefined, 'only bulk waits for the centre');
  const held = telemetry.get('edge_forwarding_held') as { value(l: Record<string, string>): number };
  assert.equal(held.value({ reason: 'centre' }), 1);

  const consumerOptions = mqttSink.options.parse({ url: mosquitto.url, announce_online: true });
  const consumer = await mqttSink.createConsumer(consumerOptions, { ...env, clientName: 'receiver-c' });
  await consumer.start(async () => {});
  await until(() => governor.hold('backlog') === undefined, 'the gate opened on the retained "1"');
  assert.equal(held.value({ reason: 'centre' }), 0);

  await consumer.close();
  await until(() => governor.hold('backlog')?.detail === 'centre: the receiver is offline', 'the gate closed on "0"');

  // A gateway that connects later learns the state from the retained message alone.
  const governor2 = new Governor(governorSchema.parse({ classes: { backlog: 'bulk' }, gates: { centre: {} } })!, {
    dataDir: dir,
    telemetry: new Telemetry(),
    log: silentLogger,
  });
  const consumer2 = await mqttSink.createConsumer(consumerOptions, { ...env, clientName: 'receiver-c' });
  await consumer2.start(async () => {});
  cleanups.push(() => consumer2.close());
  const sink2 = await mqttSink.create(mqttSink.options.parse({ url: mosquitto.url, client_id: 'gw-c2' }), {
    ...env,
    device: 'gw-c2',
    centreOnline: governor2.centreOnline,
  });
  await sink2.connect();
  cleanups.push(() => sink2.close());
  await until(() => governor2.hold('backlog') === undefined, 'the late gateway saw the retained online state');
  governor2.stop();
});
