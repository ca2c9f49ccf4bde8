import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { options } from './options.ts';

export const postgresSource = defineSourceDriver({
  type: 'postgres',
  summary: 'Polls a PostgreSQL table or query by an increasing id or (timestamp, id) cursor, never skipping rows whose transaction commits late.',
  mode: 'polled',
  options,
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config, env) => (await import('./source.ts')).createPostgresSource(config, env),
});
