import { defineSinkDriver } from '../../../agent/sdk/index.ts';
import { pulsarOptions } from './options.ts';
import { PulsarWsSink } from './ws-sink.ts';
import { PulsarWsConsumer } from './ws-consumer.ts';
import { loadNative, PulsarNativeConsumer, PulsarNativeSink } from './native.ts';

export const pulsarSink = defineSinkDriver({
  type: 'pulsar',
  summary: "Sends each sealed batch to a Pulsar topic (WebSocket API, or the native client); deletes it from the queue on the broker's send receipt.",
  options: pulsarOptions,
  async preflight(config) {
    if (config.transport === 'native') await loadNative();
  },
  create: (config, env) => (config.transport === 'native' ? new PulsarNativeSink(config, env) : new PulsarWsSink(config, env)),
  createConsumer: (config, env) => (config.transport === 'native' ? new PulsarNativeConsumer(config, env) : new PulsarWsConsumer(config, env)),
});
