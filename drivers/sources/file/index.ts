import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { options } from './options.ts';
import { FileSource } from './source.ts';

export const fileSource = defineSourceDriver({
  type: 'file',
  summary:
    'Tails files (paths or globs) as JSON lines, CSV or plain lines; follows rotation by rename and copytruncate and truncation; the position in each file commits with its records, so a restart neither skips nor repeats a line.',
  mode: 'service',
  options,
  create: (config, env) => new FileSource(config, env),
});
