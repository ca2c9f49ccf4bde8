import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AgentError } from '../../../agent/sdk/index.ts';
import type { PulsarOptions } from './options.ts';

export function readConfigFile(baseDir: string, path: string, what: string): Buffer {
  try {
    return readFileSync(resolve(baseDir, path));
  } catch (cause) {
    throw new AgentError('CONFIG_INVALID', `cannot read Pulsar ${what} file ${path}`, { cause });
  }
}

/** The authentication token from token_file or token_env, read at each connection so a rotated token is picked up. */
export function readToken(options: PulsarOptions, baseDir: string): string | undefined {
  if (options.token_file) return readConfigFile(baseDir, options.token_file, 'token').toString('utf8').trim();
  if (options.token_env) {
    const value = process.env[options.token_env];
    if (value === undefined || value === '') throw new AgentError('CONFIG_INVALID', `environment variable ${options.token_env} (Pulsar token) is not set`);
    return value.trim();
  }
  return undefined;
}
