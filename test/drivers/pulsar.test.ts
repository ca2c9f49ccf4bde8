import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pulsarSink } from '../../drivers/sinks/pulsar/index.ts';
import { pulsarOptions } from '../../drivers/sinks/pulsar/options.ts';
import { SeriesOrder } from '../../drivers/sinks/pulsar/series-order.ts';
import { nativeClientOptions } from '../../drivers/sinks/pulsar/native.ts';
import { topicFor, topicPattern } from '../../drivers/sinks/pulsar/naming.ts';
import { startPulsar } from '../../scripts/lib/pulsar.ts';
import { silentLogger } from '../../agent/log.ts';
import { isAgentError } from '../../agent/sdk/index.ts';
import { sinkContract } from '../contract/sink-contract.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';

describe('pulsar sink, websocket transport (real Pulsar standalone)', () => {
  sinkContract(pulsarSink, async () => {
    const broker = await startPulsar();
    return {
      options: { url: broker.wsUrl, reconnect: { initial_delay: '20ms', max_delay: '300ms' } },
      stop: () => broker.stop(),
      restart: () => broker.restart(),
      close: () => broker.close(),
    };
  });
});

describe('pulsar sink, native transport (pulsar-client is not installed here)', () => {
  const options = pulsarOptions().parse({ transport: 'native', url: 'pulsar://127.0.0.1:6650' });
  const isClear = (err: unknown) => isAgentError(err, 'CONFIG_INVALID') && /pulsar-client/.test(err.message) && /transport: websocket/.test(err.message);

  test('preflight (check-config) names the missing package and the transport to use instead', async () => {
    await assert.rejects(pulsarSink.preflight!(options), isClear);
  });

  test('creating the sink or the consumer fails at once with the same error, not at the first send', async () => {
    await assert.rejects(pulsarSink.create(options, { ...driverEnv({ log: silentLogger, baseDir: '/' }), device: 'gw' }), isClear);
    await assert.rejects(pulsarSink.createConsumer(options, { ...driverEnv({ log: silentLogger, baseDir: '/' }), clientName: 'r' }), isClear);
  });

  test('the websocket transport needs no preflight', async () => {
    await pulsarSink.preflight!(pulsarOptions().parse({ url: 'ws://127.0.0.1:8080' }));
  });
});

describe('pulsar topic mapping and sequence order', () => {
  test('the template fills device and stream; the receiver pattern matches exactly what it can produce', () => {
    const options = pulsarOptions().parse({ url: 'ws://x:8080', tenant: 'acme', namespace: 'edge', topic: 'gw.{device}.{stream}' });
    const topic = topicFor(options, 'site-1', 'health');
    assert.equal(topic, 'persistent://acme/edge/gw.site-1.health');
    const pattern = new RegExp(`^${topicPattern(options)}$`);
    assert.ok(pattern.test(topic));
    assert.ok(!pattern.test('persistent://acme/edge/gwXsite-1.health'), 'dots are literal');
    assert.ok(!pattern.test('persistent://acme/other/gw.site-1.health'));
  });

  test('a session continues only with the next sequence; a reopen keeps the name when nothing lower is unconfirmed', () => {
    const order = new SeriesOrder('p');
    order.attempt(1);
    assert.deepEqual(order.plan(1), { open: true, producerName: 'p', initialSequenceId: 0 });
    order.attempt(2);
    assert.deepEqual(order.plan(2), { open: false });
    order.confirmed(1);
    order.confirmed(2);
    order.sessionEnded();
    order.attempt(5); // 3 and 4 were dropped by the queue, never attempted
    assert.deepEqual(order.plan(5), { open: true, producerName: 'p', initialSequenceId: 4 });
  });

  test('a batch that failed is never overtaken on the same producer name: the series moves to a fresh name', () => {
    const order = new SeriesOrder('p');
    order.attempt(1);
    order.plan(1);
    order.attempt(2);
    order.plan(2);
    order.sessionEnded(); // 1 and 2 failed with the connection
    order.attempt(2); // the runtime resends 2 while 1 waits for its retry
    const plan = order.plan(2);
    assert.equal(plan.open, true);
    assert.notEqual(plan.open && plan.producerName, 'p', 'a stored 2 under p would make a resent 1 look like a duplicate');
  });

  test('a resend below what was already sent, without a gap, reuses the name (the broker stored in order)', () => {
    const order = new SeriesOrder('p');
    for (const seq of [1, 2, 3]) {
      order.attempt(seq);
      order.plan(seq);
    }
    order.sessionEnded();
    order.attempt(1);
    assert.deepEqual(order.plan(1), { open: true, producerName: 'p', initialSequenceId: 0 });
  });
});

describe('pulsar native transport: the options it gives the C++ client', () => {
  test('without a tls section the broker certificate and its host name are verified', () => {
    const options = pulsarOptions().parse({ transport: 'native', url: 'pulsar+ssl://broker.example.net:6651' });
    const built = nativeClientOptions(options, '/etc/edge-agent', undefined);
    assert.equal(built.tlsValidateHostname, true);
    assert.equal(built.tlsAllowInsecureConnection, false);
    assert.equal('tlsTrustCertsFilePath' in built, false);
  });

  test('tls.ca is resolved against the config folder, not the working directory', () => {
    const options = pulsarOptions().parse({ transport: 'native', url: 'pulsar+ssl://b:6651', tls: { ca: 'certs/ca.pem' } });
    const built = nativeClientOptions(options, '/etc/edge-agent', 'tok');
    assert.equal(built.tlsTrustCertsFilePath, '/etc/edge-agent/certs/ca.pem');
    assert.equal(built.tlsValidateHostname, true);
    assert.equal(built.token, 'tok');
    const absolute = nativeClientOptions(
      pulsarOptions().parse({ transport: 'native', url: 'pulsar+ssl://b:6651', tls: { ca: '/srv/ca.pem' } }),
      '/etc/edge-agent',
      undefined,
    );
    assert.equal(absolute.tlsTrustCertsFilePath, '/srv/ca.pem');
  });

  test('reject_unauthorized: false turns off both checks', () => {
    const options = pulsarOptions().parse({ transport: 'native', url: 'pulsar+ssl://b:6651', tls: { reject_unauthorized: false } });
    const built = nativeClientOptions(options, '/', undefined);
    assert.equal(built.tlsValidateHostname, false);
    assert.equal(built.tlsAllowInsecureConnection, true);
  });
});
