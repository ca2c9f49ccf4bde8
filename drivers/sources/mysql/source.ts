import type { CommonSourceConfig, DriverEnv, PolledSource } from '../../../agent/sdk/index.ts';
import { serverSqlSource } from '../../common/sql/server-source.ts';
import type { Options } from './options.ts';

/** The mysql source's implementation, loaded when a config uses it (its index.ts is the declaration). */
export function createMysqlSource(config: Options & CommonSourceConfig, env: DriverEnv): PolledSource {
  const where = `MariaDB/MySQL database ${config.database} at ${config.host}:${config.port}`;
  return serverSqlSource(
    config,
    env,
    'mysql',
    where,
    async (connection, cursor, log) => new (await import('./dialect.ts')).MysqlDialect(connection, cursor, log),
  );
}
