import { defineSinkDriver } from '../../../agent/sdk/index.ts';
import { kafkaOptions } from './options.ts';

export const kafkaSink = defineSinkDriver({
  type: 'kafka',
  summary:
    "Sends each sealed batch to a Kafka topic (idempotent producer, acks=all, key <device>/<stream>); deletes it from the queue on the broker's acknowledgement.",
  options: kafkaOptions,
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config, env) => new (await import('./sink.ts')).KafkaSink(config, env),
  createConsumer: async (config, env) => new (await import('./consumer.ts')).KafkaConsumer(config, env),
});
