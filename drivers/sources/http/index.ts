import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { options } from './options.ts';

export const httpSource = defineSourceDriver({
  type: 'http',
  summary:
    'A local HTTP ingest endpoint (loopback by default, TLS optional): JSON, JSON lines or CBOR posted to a route per stream with a bearer token; answered 202 only once the records are committed.',
  mode: 'service',
  options,
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config, env) => new (await import('./source.ts')).HttpSource({ ...config, stream: config.stream ?? config.name }, env),
});
