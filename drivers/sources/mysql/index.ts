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
      host: z.string().min(1).default('127.0.0.1').describe('Server host name or address.'),
      port: z.number().int().min(1).max(65535).default(3306).describe('Server port.'),
      database: z.string().min(1).describe('Database (schema) to read.'),
      user: z.string().min(1).describe('Account to connect as (SELECT on the table; PROCESS lets the source see open transactions).'),
      ...sqlCredentialOptions(),
      connect_timeout: duration(1).prefault('10s').describe('Longest a connection attempt may take.'),
      // mysql2 sets the SNI from the host itself and lets no check name be given: no `servername` here.
      tls: sqlTlsOptions('MariaDB/MySQL', false),
      late_commit_lag: duration()
        .prefault('10s')
        .describe(
          'Only without the PROCESS privilege: rows are read once they have been visible this long, so a transaction committing later than this can be skipped.',
        ),
      ...sqlCursorOptions(),
    })
    .superRefine(exactlyOneInput);

export const mysqlSource = defineSourceDriver({
  type: 'mysql',
  summary: 'Polls a MariaDB/MySQL table or query by an increasing id or (timestamp, id) cursor, never skipping rows whose transaction commits late.',
  mode: 'polled',
  options,
  create: (config, env) => {
    checkInput(config, 'mysql');
    const where = `MariaDB/MySQL database ${config.database} at ${config.host}:${config.port}`;
    const dialect = lazyDialect(where, async () => {
      const { MysqlDialect } = await import('./dialect.ts');
      const tls = config.tls;
      const ssl = tls ? () => sqlTlsConnectionOptions(tls, env.baseDir, where) : undefined;
      return new MysqlDialect({ ...config, password: () => readPassword(config, env.baseDir, where), ssl }, config, env.log);
    });
    return new SqlPolledSource(config, dialect, inputName(config));
  },
});
