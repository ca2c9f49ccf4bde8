import type { CommonSourceConfig, DriverEnv, Logger, PolledSource, TlsOptions } from '../../../agent/sdk/index.ts';
import { readPassword } from '../secrets.ts';
import { lazyDialect } from './lazy.ts';
import type { SqlCursorConfig } from './options.ts';
import { checkInput, SqlPolledSource, type SqlDialect } from './poller.ts';
import { inputName } from './statements.ts';
import { sqlTlsConnectionOptions } from './tls.ts';

/** What a database server's source (postgres, mysql) is configured with beyond its cursor. */
interface ServerOptions extends SqlCursorConfig {
  host: string;
  port: number;
  database: string;
  tls?: TlsOptions | undefined;
  password_file?: string | undefined;
  password_env?: string | undefined;
}

/** The connection a server dialect opens: the options, with the password and TLS read at each connect. */
export type ServerConnection<C> = C & { password: () => string | undefined; ssl: (() => ReturnType<typeof sqlTlsConnectionOptions>) | undefined };

/**
 * A database server's polled source (postgres, mysql): the input checked, then its dialect loaded at the first
 * connect by `loadDialect` (the driver's own `import()`, so the client library is evaluated only then), with the
 * password and the TLS files read at each connect (both may be renewed on disk).
 */
export function serverSqlSource<C extends ServerOptions & CommonSourceConfig, Fence>(
  config: C,
  env: DriverEnv,
  driver: string,
  where: string,
  loadDialect: (connection: ServerConnection<C>, config: C, log: Logger) => Promise<SqlDialect<Fence>>,
): PolledSource {
  checkInput(config, driver);
  const dialect = lazyDialect(where, () => {
    const tls = config.tls;
    const ssl = tls ? () => sqlTlsConnectionOptions(tls, env.baseDir, where) : undefined;
    return loadDialect({ ...config, password: () => readPassword(config, env.baseDir, where), ssl }, config, env.log);
  });
  return new SqlPolledSource(config, dialect, inputName(config));
}
