import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { options } from './options.ts';

export const fileSource = defineSourceDriver({
  type: 'file',
  summary:
    'Tails files (paths or globs) as JSON lines, CSV or plain lines; follows rotation by rename and copytruncate and truncation; the position in each file commits with its records, so a restart neither skips nor repeats a line.',
  mode: 'service',
  options,
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config, env) => new (await import('./source.ts')).FileSource(config, env),
});
