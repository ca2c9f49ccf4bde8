import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Consumer } from '@platformatic/kafka';
import { kafkaSink } from '../../drivers/sinks/kafka/index.ts';
import { kafkaOptions } from '../../drivers/sinks/kafka/options.ts';
import { clientOptions } from '../../drivers/sinks/kafka/client-options.ts';
import { kafkaUnavailable, startKafka, type KafkaBroker } from '../../scripts/lib/kafka.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { describeError, isAgentError } from '../../agent/sdk/index.ts';
import type { Logger } from '../../agent/log.ts';
import { makeCertificates } from '../helpers/certs.ts';
import { until } from '../helpers/processes.ts';

// The sample config's main case (drivers/sinks/kafka/sample.yaml), against a real broker: a TLS listener whose
// certificate a private CA signed, and SASL/SCRAM-SHA-512 on it (SASL_SSL).
const unavailable = kafkaUnavailable();
if (unavailable) console.log(`# SKIP kafka TLS + SCRAM tests: ${unavailable}`);

describe('kafka sink with TLS and SCRAM-SHA-512 (real broker, SASL_SSL listener)', { skip: unavailable }, () => {
  const USER = 'site-17-gw';
  // Random, so that finding it in a log line or an error message cannot be a coincidence of fixed test text.
  const PASSWORD = `gw-${randomBytes(9).toString('hex')}`;
  const WRONG_PASSWORD = `wrong-${randomBytes(9).toString('hex')}`;
  const TOPIC = 'edge-tls-scram';
  let work: string;
  /** The gateway's config folder: what `tls.ca` and `sasl.password_file` are relative to. */
  let baseDir: string;
  let broker: KafkaBroker;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'edge-kafka-tls-'));
    const certs = makeCertificates(join(work, 'pki')); // server.key is PKCS#8 already, as a PEM keystore needs
    const stranger = makeCertificates(join(work, 'other-pki')); // a CA that signed nothing the broker has
    baseDir = join(work, 'gateway');
    mkdirSync(baseDir);
    copyFileSync(certs.ca, join(baseDir, 'ca.pem'));
    copyFileSync(stranger.ca, join(baseDir, 'other-ca.pem'));
    writeFileSync(join(baseDir, 'kafka-password'), PASSWORD, { mode: 0o600 });
    writeFileSync(join(baseDir, 'wrong-password'), WRONG_PASSWORD, { mode: 0o600 });
    broker = await startKafka({ scramUsers: { [USER]: PASSWORD }, scramMechanism: 'SCRAM-SHA-512', tlsDir: join(work, 'pki') });
  });
  after(async () => {
    await broker?.close(); // kills the broker by its PID, removes its directory
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** A logger whose every line is kept, to look for what an operator reads and for leaked secrets. */
  const capturingLogger = () => {
    const lines: string[] = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) }) as unknown as Logger;
    return { log, lines };
  };

  /** The options as an operator writes them in the sample: files relative to the config's folder. */
  const optionsWith = (ca: string, passwordFile: string) =>
    kafkaOptions().parse({
      brokers: [broker.bootstrap],
      topic: TOPIC,
      tls: { ca },
      sasl: { mechanism: 'SCRAM-SHA-512', username: USER, password_file: passwordFile },
      connect_timeout: '5s',
      request_timeout: '5s',
      retries: 2,
      reconnect: { initial_delay: '20ms', max_delay: '300ms' },
    });

  const sinkWith = async (ca: string, passwordFile: string, log: Logger) =>
    await kafkaSink.create(optionsWith(ca, passwordFile), { ...driverEnv({ log, baseDir }), device: 'site-17-gw' });

  const batch = (seq: number, bytes: Uint8Array) => ({ device: 'site-17-gw', stream: 'tls', epoch: '00000000000000bb', seq, count: 1, bytes });

  const refusal = async (write: Promise<void>) => {
    const err = await write.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(isAgentError(err), `expected an AgentError, got ${String(err)}`);
    return err;
  };

  test('the right CA and password: connected, the batch is acknowledged and really is on the topic', { timeout: 90_000 }, async () => {
    const { log, lines } = capturingLogger();
    const sink = await sinkWith('ca.pem', 'kafka-password', log);
    const payload = new Uint8Array(randomBytes(64));
    try {
      await sink.connect();
      await sink.waitConnected(AbortSignal.timeout(20_000));
      assert.equal(sink.connected, true);
      await sink.write(batch(1, payload)); // resolves on the broker's acknowledgement only
    } finally {
      await sink.close();
    }

    // Read it back over the same SASL_SSL listener, with the same operator options (so reading proves the
    // client side of TLS + SCRAM a second time, not a back door).
    const reader = new Consumer<Buffer, Buffer, Buffer, Buffer>({
      ...clientOptions(optionsWith('ca.pem', 'kafka-password'), baseDir, 'edge-test-reader', 'test reader'),
      groupId: `edge-test-reader-${randomBytes(4).toString('hex')}`,
      autocommit: false,
      maxWaitTime: 200,
    });
    const seen: { key: string; value: Buffer; headers: Map<string, string> }[] = [];
    try {
      const stream = await reader.consume({ topics: [TOPIC], mode: 'earliest' });
      stream.on('data', (m: { key: Buffer; value: Buffer; headers: Map<Buffer, Buffer> }) => {
        seen.push({ key: m.key.toString(), value: m.value, headers: new Map([...m.headers].map(([k, v]) => [k.toString(), v.toString()])) });
      });
      await until(() => seen.length >= 1, 'the batch on the topic', 60_000);
      await stream.close();
    } finally {
      await reader.close(true);
    }
    assert.equal(seen.length, 1, 'exactly the one batch written');
    assert.equal(seen[0]!.key, 'site-17-gw/tls');
    assert.deepEqual(new Uint8Array(seen[0]!.value), payload);
    assert.equal(seen[0]!.headers.get('seq'), '1');
    assert.ok(lines.some((l) => l.includes('kafka connected')));
    for (const l of lines) assert.ok(!l.includes(PASSWORD), `the password in a log line: ${l}`);
  });

  test('a wrong password: never connected, the write is refused naming authentication, the password nowhere', { timeout: 90_000 }, async () => {
    const { log, lines } = capturingLogger();
    const sink = await sinkWith('ca.pem', 'wrong-password', log);
    try {
      await sink.connect(); // resolves after the first probe, which the broker answered with a refusal
      assert.equal(sink.connected, false);
      const err = await refusal(sink.write(batch(2, new Uint8Array([1, 2, 3]))));
      assert.equal(err.retryable, true, 'the batch stays queued until the operator fixes the password');
      assert.equal(err.code, 'SINK_UNAVAILABLE'); // refused for want of a connection, not by the broker
      assert.match(err.message, /SASL authentication failed: check sasl\.username and the password/);
      // The operator's log says it too, as a configuration problem (not "not reachable").
      const problems = lines.filter((l) => l.includes('kafka_refused_by_configuration'));
      assert.ok(problems.length >= 1, `no configuration problem logged:\n${lines.join('')}`);
      assert.match(problems[0]!, /SASL authentication failed/);
      assert.ok(!lines.some((l) => l.includes('not reachable')), 'an authentication failure is not a network outage');
      const texts = [...lines, err.message, describeError(err), describeError(err.cause)];
      for (const t of texts) {
        assert.ok(!t.includes(WRONG_PASSWORD), `the wrong password leaked: ${t}`);
        assert.ok(!t.includes(PASSWORD), `the right password leaked: ${t}`);
      }
    } finally {
      await sink.close();
    }
  });

  test('a CA that did not sign the broker certificate: never connected, a TLS verification error says so', { timeout: 90_000 }, async () => {
    const { log, lines } = capturingLogger();
    const sink = await sinkWith('other-ca.pem', 'kafka-password', log);
    try {
      await sink.connect(); // bounded: the handshake fails at once, the probe does not wait for a timeout
      assert.equal(sink.connected, false);
      const err = await refusal(sink.write(batch(3, new Uint8Array([4, 5, 6]))));
      assert.equal(err.retryable, true);
      assert.equal(err.code, 'SINK_UNAVAILABLE');
      assert.match(err.message, /TLS verification failed: the certificate is not signed by a trusted CA \(set tls\.ca/);
      const problems = lines.filter((l) => l.includes('kafka_refused_by_configuration'));
      assert.ok(problems.length >= 1, `no configuration problem logged:\n${lines.join('')}`);
      assert.match(problems[0]!, /TLS verification failed/);
      for (const t of [...lines, err.message]) assert.ok(!t.includes(PASSWORD), `the password leaked: ${t}`);
    } finally {
      await sink.close();
    }
  });
});
