import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mqttSink } from '../../drivers/sinks/mqtt/index.ts';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { silentLogger } from '../../agent/log.ts';
import { makeCertificates } from '../helpers/certs.ts';
import type { IncomingMessage } from '../../agent/sdk/index.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';

let dir: string;
let broker: Mosquitto;
let certs: ReturnType<typeof makeCertificates>;

// A real Mosquitto with a TLS listener that demands a client certificate signed by our CA.
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edge-tls-'));
  certs = makeCertificates(dir);
  broker = await startMosquitto({
    extra: [`cafile ${certs.ca}`, `certfile ${certs.serverCert}`, `keyfile ${certs.serverKey}`, 'require_certificate true', 'use_identity_as_username true'],
  });
});
after(async () => {
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const env = driverEnv({ log: silentLogger, baseDir: '/' });
const url = () => `mqtts://127.0.0.1:${broker.port}`;

test('mqtt sink over TLS with a client certificate: the batch is acknowledged and read back over TLS', async () => {
  const options = mqttSink.options.parse({ url: url(), tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } });
  const got: IncomingMessage[] = [];
  let arrived!: () => void;
  const arrival = new Promise<void>((resolve) => (arrived = resolve));
  const consumer = mqttSink.createConsumer(options, { ...env, clientName: 'tls-consumer' });
  await consumer.start(async (m) => {
    got.push(m);
    arrived();
  });
  const sink = mqttSink.create(options, { ...env, device: 'gw-tls' });
  await sink.connect();
  await sink.waitConnected(AbortSignal.timeout(10_000));
  assert.equal(sink.connected, true);
  // The consumer may still be subscribing; write until one arrives (each write is itself acknowledged).
  for (let seq = 1; got.length === 0 && seq < 50; seq++) {
    await sink.write({ device: 'gw-tls', stream: 's', epoch: '00', seq, count: 1, bytes: new Uint8Array([seq]) });
    await Promise.race([arrival, new Promise((r) => setTimeout(r, 100))]);
  }
  assert.ok(got.length > 0, 'a batch came through the TLS broker');
  await sink.close();
  await consumer.close();
});

test('mqtt sink over TLS without a client certificate never connects, and writes fail as retryable', async () => {
  const options = mqttSink.options.parse({ url: url(), tls: { ca: certs.ca }, reconnect: { initial_delay: '20ms', max_delay: '100ms' } });
  const sink = mqttSink.create(options, { ...env, device: 'gw-tls' });
  await sink.connect();
  await sink.waitConnected(AbortSignal.timeout(1_500)); // gives the handshake time to be refused
  assert.equal(sink.connected, false);
  await assert.rejects(
    sink.write({ device: 'gw-tls', stream: 's', epoch: '00', seq: 1, count: 1, bytes: new Uint8Array([1]) }),
    (err: { code?: string; retryable?: boolean }) => err.code === 'SINK_UNAVAILABLE' && err.retryable === true,
  );
  await sink.close();
});

test('mqtt sink over TLS refuses a broker certificate from an unknown CA', async () => {
  const other = makeCertificates(join(dir, 'other'));
  const options = mqttSink.options.parse({ url: url(), tls: { ca: other.ca, cert: certs.clientCert, key: certs.clientKey } });
  const sink = mqttSink.create(options, { ...env, device: 'gw-tls' });
  await sink.connect();
  await sink.waitConnected(AbortSignal.timeout(1_500));
  assert.equal(sink.connected, false, 'must not talk to a broker it cannot verify');
  await sink.close();
});
