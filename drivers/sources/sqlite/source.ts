import { resolve } from 'node:path';
import type { CommonSourceConfig, DriverEnv, PolledSource } from '../../../agent/sdk/index.ts';
import { SqlPolledSource, checkInput } from '../../common/sql/poller.ts';
import { inputName } from '../../common/sql/statements.ts';
import { SqliteDialect } from './dialect.ts';
import type { Options } from './options.ts';

/** The sqlite source's implementation, loaded when a config uses it (its index.ts is the declaration). */
export function createSqliteSource(config: Options & CommonSourceConfig, env: DriverEnv): PolledSource {
  checkInput(config, 'sqlite');
  const path = resolve(env.baseDir, config.path);
  return new SqlPolledSource(config, new SqliteDialect(path, config, env), inputName(config));
}
