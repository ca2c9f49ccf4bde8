import { defineSinkDriver } from '../../../agent/sdk/index.ts';
import { kafkaOptions } from './options.ts';
import { KafkaSink } from './sink.ts';
import { KafkaConsumer } from './consumer.ts';

export const kafkaSink = defineSinkDriver({
  type: 'kafka',
  summary:
    "Sends each sealed batch to a Kafka topic (idempotent producer, acks=all, key <device>/<stream>); deletes it from the queue on the broker's acknowledgement.",
  options: kafkaOptions,
  create: (config, env) => new KafkaSink(config, env),
  createConsumer: (config, env) => new KafkaConsumer(config, env),
});
