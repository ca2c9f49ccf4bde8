import type { CommonSourceConfig, DriverEnv, PolledSource } from '../../../agent/sdk/index.ts';
import { readPassword } from '../../common/secrets.ts';
import { SqlPolledSource, checkInput } from '../../common/sql/poller.ts';
import { inputName } from '../../common/sql/statements.ts';
import { lazyDialect } from '../../common/sql/lazy.ts';
import { sqlTlsConnectionOptions } from '../../common/sql/tls.ts';
import type { Options } from './options.ts';

/** The postgres source's implementation, loaded when a config uses it (its index.ts is the declaration). */
export function createPostgresSource(config: Options & CommonSourceConfig, env: DriverEnv): PolledSource {
  checkInput(config, 'postgres');
  const where = `PostgreSQL database ${config.database} at ${config.host}:${config.port}`;
  const dialect = lazyDialect(where, async () => {
    const { PostgresDialect } = await import('./dialect.ts');
    const tls = config.tls;
    const ssl = tls ? () => sqlTlsConnectionOptions(tls, env.baseDir, where) : undefined;
    return new PostgresDialect({ ...config, password: () => readPassword(config, env.baseDir, where), ssl }, config, env.log);
  });
  return new SqlPolledSource(config, dialect, inputName(config));
}
