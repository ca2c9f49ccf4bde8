import { defineSinkDriver } from '../../../agent/sdk/index.ts';
import { mqttOptions } from './options.ts';

export const mqttSink = defineSinkDriver({
  type: 'mqtt',
  summary: 'Publishes each sealed batch with QoS 1 to <topic_prefix>/<device>/<stream>; deletes it from the queue on PUBACK.',
  options: mqttOptions,
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config, env) => new (await import('./sink.ts')).MqttSink(config, env),
  createConsumer: async (config, env) => new (await import('./consumer.ts')).MqttConsumer(config, env),
});
