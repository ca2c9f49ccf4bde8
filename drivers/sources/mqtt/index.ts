import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { mqttSourceOptions } from './options.ts';

export const mqttSource = defineSourceDriver({
  type: 'mqtt',
  summary:
    'Subscribes on a local MQTT broker (or the embedded one) so site devices can publish to the gateway; QoS 1 messages are acknowledged only after their commit; QoS 2 messages are committed exactly once.',
  mode: 'service',
  options: mqttSourceOptions,
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config, env) => new (await import('./source.ts')).MqttSource(config, env),
});
