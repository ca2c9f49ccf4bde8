import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AgentError } from '../errors.ts';

/** Where the embedded broker's password comes from: never the config text (the drivers' secrets pattern). */
export interface BrokerPasswordSource {
  password_file?: string | undefined;
  password_env?: string | undefined;
}

/**
 * The password from `broker.password_file` (its first line, relative to the config's folder) or
 * `broker.password_env`. Errors name the file or the variable, never what it holds.
 */
export function readBrokerPassword(source: BrokerPasswordSource, baseDir: string): string {
  if (source.password_file !== undefined) {
    const path = resolve(baseDir, source.password_file);
    try {
      return readFileSync(path, 'utf8').split(/\r?\n/, 1)[0] ?? '';
    } catch (cause) {
      throw new AgentError('BROKER_FAILED', `embedded broker: cannot read broker.password_file ${path}`, { cause });
    }
  }
  if (source.password_env !== undefined) {
    const value = process.env[source.password_env];
    if (value === undefined)
      throw new AgentError('BROKER_FAILED', `embedded broker: environment variable ${source.password_env} (broker.password_env) is not set`);
    return value;
  }
  throw new AgentError('CONFIG_INVALID', 'embedded broker: broker.username needs broker.password_file or broker.password_env');
}
