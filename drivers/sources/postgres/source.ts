import type { CommonSourceConfig, DriverEnv, PolledSource } from '../../../agent/sdk/index.ts';
import { serverSqlSource } from '../../common/sql/server-source.ts';
import type { Options } from './options.ts';

/** The postgres source's implementation, loaded when a config uses it (its index.ts is the declaration). */
export function createPostgresSource(config: Options & CommonSourceConfig, env: DriverEnv): PolledSource {
  const where = `PostgreSQL database ${config.database} at ${config.host}:${config.port}`;
  return serverSqlSource(
    config,
    env,
    'postgres',
    where,
    async (connection, cursor, log) => new (await import('./dialect.ts')).PostgresDialect(connection, cursor, log),
  );
}
