import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { kafkaSink } from '../../drivers/sinks/kafka/index.ts';
import { kafkaOptions } from '../../drivers/sinks/kafka/options.ts';
import { mapProduceError } from '../../drivers/sinks/kafka/errors.ts';
import { ByteWindow } from '../../drivers/sinks/kafka/byte-window.ts';
import { kafkaUnavailable, startKafka } from '../../scripts/lib/kafka.ts';
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
