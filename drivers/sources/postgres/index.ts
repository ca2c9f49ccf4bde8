import { z, duration, defineSourceDriver } from '../../../agent/sdk/index.ts';
import { sqlCredentialOptions, sqlCursorOptions, exactlyOneInput } from '../../common/sql/options.ts';
import { readPassword } from '../../common/secrets.ts';
import { SqlPolledSource, checkInput } from '../../common/sql/poller.ts';
import { inputName } from '../../common/sql/statements.ts';
import { lazyDialect } from '../../common/sql/lazy.ts';
import { sqlTlsConnectionOptions, sqlTlsOptions } from '../../common/sql/tls.ts';

const options = () =>
  z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1').describe('Server host name or address (or a Unix socket directory).'),
      port: z.number().int().min(1).max(65535).default(5432).describe('Server port.'),
      database: z.string().min(1).describe('Database to read.'),
      user: z.string().min(1).default('postgres').describe('Role to connect as (read access to the table is enough).'),
      ...sqlCredentialOptions(),
      connect_timeout: duration(1).prefault('10s').describe('Longest a connection attempt may take.'),
      tls: sqlTlsOptions('PostgreSQL', true),
      ...sqlCursorOptions(),
    })
    .superRefine(exactlyOneInput);

export const postgresSource = defineSourceDriver({
  type: 'postgres',
  summary: 'Polls a PostgreSQL table or query by an increasing id or (timestamp, id) cursor, never skipping rows whose transaction commits late.',
  mode: 'polled',
  options,
  create: (config, env) => {
    checkInput(config, 'postgres');
    const where = `PostgreSQL database ${config.database} at ${config.host}:${config.port}`;
    const dialect = lazyDialect(where, async () => {
      const { PostgresDialect } = await import('./dialect.ts');
      const tls = config.tls;
      const ssl = tls ? () => sqlTlsConnectionOptions(tls, env.baseDir, where) : undefined;
      return new PostgresDialect({ ...config, password: () => readPassword(config, env.baseDir, where), ssl }, config, env.log);
    });
    return new SqlPolledSource(config, dialect, inputName(config));
  },
});
