import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mqttSink } from '../../drivers/sinks/mqtt/index.ts';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { silentLogger } from '../../agent/log.ts';
import { makeCertificates, type MutualTlsBroker, startMutualTlsBroker } from '../helpers/certs.ts';
import type { IncomingMessage } from '../../agent/sdk/index.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';

let tls: MutualTlsBroker;

// A real Mosquitto with a TLS listener that demands a client certificate signed by our CA.
before(async () => {
  tls = await startMutualTlsBroker('edge-tls-');
});
after(async () => {
  await tls?.stop();
});

const env = driverEnv({ log: silentLogger, baseDir: '/' });
const url = () => `mqtts://127.0.0.1:${tls.broker.port}`;

test('mqtt sink over TLS with a client certificate: the batch is acknowledged and read back over TLS', async () => {
  const options = mqttSink.options.parse({ url: url(), tls: { ca: tls.certs.ca, cert: tls.certs.clientCert, key: tls.certs.clientKey } });
  const got: IncomingMessage[] = [];
  let arrived!: () => void;
  const arrival = new Promise<void>((resolve) => (arrived = resolve));
  const consumer = await mqttSink.createConsumer(options, { ...env, clientName: 'tls-consumer' });
  await consumer.start(async (m) => {
    got.push(m);
    arrived();
  });
  const sink = await mqttSink.create(options, { ...env, device: 'gw-tls' });
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
  const options = mqttSink.options.parse({ url: url(), tls: { ca: tls.certs.ca }, reconnect: { initial_delay: '20ms', max_delay: '100ms' } });
  const sink = await mqttSink.create(options, { ...env, device: 'gw-tls' });
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
  const other = makeCertificates(join(tls.dir, 'other'));
  const options = mqttSink.options.parse({ url: url(), tls: { ca: other.ca, cert: tls.certs.clientCert, key: tls.certs.clientKey } });
  const sink = await mqttSink.create(options, { ...env, device: 'gw-tls' });
  await sink.connect();
  await sink.waitConnected(AbortSignal.timeout(1_500));
  assert.equal(sink.connected, false, 'must not talk to a broker it cannot verify');
  await sink.close();
});

test('mqtt sink over TLS verifies the host name by default: a certificate of the right CA for another name is refused', async () => {
  const elsewhere = makeCertificates(join(tls.dir, 'elsewhere'), 'DNS:elsewhere.test');
  const named = await startMosquitto({ extra: [`certfile ${elsewhere.serverCert}`, `keyfile ${elsewhere.serverKey}`] });
  try {
    const errors: string[] = [];
    const log = { ...silentLogger, warn: (fields: unknown) => errors.push(JSON.stringify(fields)) } as typeof silentLogger;
    const parse = (tls: object) =>
      mqttSink.options.parse({ url: `mqtts://127.0.0.1:${named.port}`, tls, reconnect: { initial_delay: '20ms', max_delay: '100ms' } });
    const refused = await mqttSink.create(parse({ ca: elsewhere.ca }), { ...driverEnv({ log, baseDir: '/' }), device: 'gw-tls' });
    await refused.connect();
    await refused.waitConnected(AbortSignal.timeout(1_500));
    assert.equal(refused.connected, false, 'must not talk to a broker whose certificate names another host');
    await refused.close();
    assert.ok(
      errors.some((e) => /altnames|ERR_TLS_CERT_ALTNAME_INVALID|does not match/i.test(e)),
      errors.join('\n'),
    );
    // The same broker under the name its certificate carries (servername): connected, so the name was the only fault.
    const accepted = await mqttSink.create(parse({ ca: elsewhere.ca, servername: 'elsewhere.test' }), { ...env, device: 'gw-tls' });
    await accepted.connect();
    await accepted.waitConnected(AbortSignal.timeout(10_000));
    assert.equal(accepted.connected, true);
    await accepted.close();
  } finally {
    await named.stop();
  }
});
