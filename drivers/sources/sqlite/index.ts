import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { options } from './options.ts';

export const sqliteSource = defineSourceDriver({
  type: 'sqlite',
  summary: 'Polls a table or query of a SQLite file written by another program (read-only) by an increasing id or (timestamp, id) cursor.',
  mode: 'polled',
  options,
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config, env) => (await import('./source.ts')).createSqliteSource(config, env),
});
