import { defineSinkDriver } from '../../../agent/sdk/index.ts';
import { mqttOptions } from './options.ts';
import { MqttSink } from './sink.ts';
import { MqttConsumer } from './consumer.ts';

export const mqttSink = defineSinkDriver({
  type: 'mqtt',
  summary: 'Publishes each sealed batch with QoS 1 to <topic_prefix>/<device>/<stream>; deletes it from the queue on PUBACK.',
  options: mqttOptions,
  create: (config, env) => new MqttSink(config, env),
  createConsumer: (config, env) => new MqttConsumer(config, env),
});
