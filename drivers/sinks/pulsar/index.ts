import { defineSinkDriver } from '../../../agent/sdk/index.ts';
import { pulsarOptions } from './options.ts';

export const pulsarSink = defineSinkDriver({
  type: 'pulsar',
  summary: "Sends each sealed batch to a Pulsar topic (WebSocket API, or the native client); deletes it from the queue on the broker's send receipt.",
  options: pulsarOptions,
  async preflight(config) {
    if (config.transport === 'native') await (await import('./native.ts')).loadNative();
  },
  // The implementation of the configured transport is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config, env) =>
    config.transport === 'native'
      ? new (await import('./native.ts')).PulsarNativeSink(config, env)
      : new (await import('./ws-sink.ts')).PulsarWsSink(config, env),
  createConsumer: async (config, env) =>
    config.transport === 'native'
      ? new (await import('./native.ts')).PulsarNativeConsumer(config, env)
      : new (await import('./ws-consumer.ts')).PulsarWsConsumer(config, env),
});
