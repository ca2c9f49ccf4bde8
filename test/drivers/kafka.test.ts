import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { kafkaSink } from '../../drivers/sinks/kafka/index.ts';
import { kafkaOptions } from '../../drivers/sinks/kafka/options.ts';
import { mapProduceError } from '../../drivers/sinks/kafka/errors.ts';
import { ByteWindow } from '../../drivers/sinks/kafka/byte-window.ts';
import { kafkaUnavailable, startKafka, type KafkaBroker } from '../../scripts/lib/kafka.ts';
import { silentLogger } from '../../agent/log.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { isAgentError } from '../../agent/sdk/index.ts';
import { sinkContract } from '../contract/sink-contract.ts';
import { ProtocolError, MultipleErrors, NetworkError } from '@platformatic/kafka';

const unavailable = kafkaUnavailable();
if (unavailable) {
  console.log(`# SKIP kafka sink tests: ${unavailable}`);
  test('kafka sink contract (real Kafka 4 broker)', { skip: unavailable }, () => {});
} else {
  describe('kafka sink (real Kafka 4 broker, KRaft)', () => {
    sinkContract(kafkaSink, async () => {
      const broker = await startKafka();
      return {
        options: {
          brokers: [broker.bootstrap],
          topic: 'edge-contract',
          session_timeout: '6s',
          connect_timeout: '5s',
          request_timeout: '5s',
          reconnect: { initial_delay: '20ms', max_delay: '300ms' },
        },
        stop: () => broker.kill(), // SIGKILL: a graceful KRaft shutdown takes ~10 s and proves no more
        restart: () => broker.restart(),
        close: () => broker.close(),
      };
    });
  });
}

describe('kafka sink options and error mapping', () => {
  test('brokers are host:port; a URL scheme is refused with a hint', () => {
    assert.equal(kafkaOptions().safeParse({ brokers: ['kafka-1.example.net:9093', '[::1]:9092'] }).success, true);
    const bad = kafkaOptions().safeParse({ brokers: ['kafka://k:9092'] });
    assert.equal(bad.success, false);
    assert.match(JSON.stringify(bad.error?.issues), /no scheme/);
    assert.equal(kafkaOptions().safeParse({ brokers: [] }).success, false);
  });

  test('a batch the broker calls too large is fatal; authorization and network failures keep it queued', () => {
    const wrap = (e: Error) => new MultipleErrors('Producing messages failed.', [new MultipleErrors('produce failed 1 times.', [e])]);
    const tooLarge = mapProduceError(wrap(new ProtocolError('MESSAGE_TOO_LARGE')), 's#1');
    assert.equal(tooLarge.error.retryable, false);
    assert.equal(tooLarge.error.code, 'SINK_REJECTED');
    const denied = mapProduceError(wrap(new ProtocolError('TOPIC_AUTHORIZATION_FAILED')), 's#2');
    assert.equal(denied.error.retryable, true);
    assert.match(denied.configuration ?? '', /ACL/);
    const down = mapProduceError(wrap(new NetworkError('Connection closed')), 's#3');
    assert.equal(down.error.retryable, true);
    assert.equal(down.error.code, 'SINK_UNAVAILABLE');
    assert.match(down.error.message, /Connection closed/);
  });

  test('the byte window holds writes beyond its limit until bytes are released, in order', async () => {
    const window = new ByteWindow(100);
    await window.acquire(60);
    const order: number[] = [];
    const second = window.acquire(60).then(() => order.push(2));
    const third = window.acquire(10).then(() => order.push(3));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, [], 'nothing fits past the limit; a small one does not overtake');
    window.release(60);
    await Promise.all([second, third]);
    assert.deepEqual(order, [2, 3]);
    assert.equal(window.inFlight, 70);
    const huge = new ByteWindow(10);
    await huge.acquire(1000); // alone, larger than the whole window: let through
  });
});

describe('kafka sink with SASL/PLAIN (real broker, SASL_PLAINTEXT listener)', { skip: unavailable }, () => {
  const env = driverEnv({ log: silentLogger, baseDir: process.cwd() });
  let broker: KafkaBroker;
  before(async () => {
    broker = await startKafka({ saslPlainUsers: { gateway: 'gw-secret' } });
  });
  after(async () => broker?.close());

  const sinkWith = async (passwordEnv: string) => {
    const options = kafkaOptions().parse({
      brokers: [broker.bootstrap],
      topic: 'edge-sasl',
      sasl: { mechanism: 'PLAIN', username: 'gateway', password_env: passwordEnv },
      connect_timeout: '5s',
      request_timeout: '5s',
      retries: 2,
      reconnect: { initial_delay: '20ms', max_delay: '300ms' },
    });
    return await kafkaSink.create(options, { ...env, device: 'gw-sasl' });
  };
  const batch = { device: 'gw-sasl', stream: 's', epoch: '00000000000000aa', seq: 1, count: 1, bytes: new Uint8Array([1, 2, 3]) };

  test('the right password: connected and a write is acknowledged', async () => {
    process.env.EDGE_TEST_KAFKA_GOOD = 'gw-secret';
    const sink = await sinkWith('EDGE_TEST_KAFKA_GOOD');
    await sink.connect();
    await sink.waitConnected(AbortSignal.timeout(15_000));
    await sink.write(batch);
    await sink.close();
  });

  test('a wrong password: never connected, the write fails as retryable (the batch stays queued)', async () => {
    process.env.EDGE_TEST_KAFKA_BAD = 'not-the-password';
    const sink = await sinkWith('EDGE_TEST_KAFKA_BAD');
    await sink.connect();
    assert.equal(sink.connected, false);
    const err = await sink.write(batch).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(isAgentError(err) && err.retryable, `expected a retryable AgentError, got ${String(err)}`);
    await sink.close();
  });
});
