import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AgentError, z, type ErrorCode } from '../../agent/sdk/index.ts';

/** Config keys for a password that never appears in config text: from a file, or from the environment. */
export const passwordOptions = {
  password_file: z.string().optional().describe('File holding the password (its first line); the password itself is never written in config.'),
  password_env: z.string().optional().describe('Environment variable holding the password.'),
};

export interface PasswordSource {
  password_file?: string | undefined;
  password_env?: string | undefined;
}

/**
 * The password from a file or the environment, read when a connection is made (never kept in config text,
 * never logged). Undefined when neither is configured. Errors name the file or variable, never the value;
 * they are retryable, since a secret can be put in place while the agent runs.
 */
export function readPassword(source: PasswordSource, baseDir: string, what: string, code: ErrorCode = 'SOURCE_FAILED'): string | undefined {
  if (source.password_file !== undefined) {
    const path = resolve(baseDir, source.password_file);
    try {
      return readFileSync(path, 'utf8').split(/\r?\n/, 1)[0] ?? '';
    } catch (cause) {
      throw new AgentError(code, `${what}: cannot read password_file ${path}`, { cause, retryable: true });
    }
  }
  if (source.password_env !== undefined) {
    const value = process.env[source.password_env];
    if (value === undefined) throw new AgentError(code, `${what}: environment variable ${source.password_env} (password_env) is not set`, { retryable: true });
    return value;
  }
  return undefined;
}
