import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { options } from './options.ts';
import { HttpSource } from './source.ts';

export const httpSource = defineSourceDriver({
  type: 'http',
  summary:
    'A local HTTP ingest endpoint (loopback by default, TLS optional): JSON, JSON lines or CBOR posted to a route per stream with a bearer token; answered 202 only once the records are committed.',
  mode: 'service',
  options,
  create: (config, env) => new HttpSource({ ...config, stream: config.stream ?? config.name }, env),
});
