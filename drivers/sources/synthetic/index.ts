import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { options } from './options.ts';

export const syntheticSource = defineSourceDriver({
  type: 'synthetic',
  summary: 'Rate-controlled generator of sensor-like records (classic or realistic shapes, sized) for load and crash tests.',
  mode: 'service',
  options,
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config, env) => new (await import('./source.ts')).SyntheticSource(config, env.baseDir),
});
