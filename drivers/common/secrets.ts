/**
 * Secrets (passwords, tokens) for every driver: never written in config text, only named there as a file or
 * an environment variable, and read when a connection is made (so they can rotate while the agent runs).
 * The value is never logged; errors name the file or the variable, never what it holds.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AgentError, envOption, fileOption, z, type ErrorCode } from '../../agent/sdk/index.ts';

/** The `<name>_file` / `<name>_env` config keys of one secret, with their reference text. */
function secretOptions<N extends string>(name: N, file: string, env: string) {
  return {
    [`${name}_file`]: fileOption(z.string().optional().describe(file), { what: name, secret: true }),
    [`${name}_env`]: envOption(z.string().optional().describe(env), { what: name }),
  } as { [K in `${N}_file` | `${N}_env`]: z.ZodOptional<z.ZodString> };
}

/** A password for a broker (MQTT sink and source). */
export const passwordOptions = secretOptions(
  'password',
  'File holding the password (its first line); the password itself is never written in config.',
  'Environment variable holding the password.',
);

/** A database password (SQL sources); read at every connect. */
export const databasePasswordOptions = secretOptions(
  'password',
  'File holding the password (first line; relative to the config file). Read at every connect, so it can rotate.',
  'Environment variable holding the password.',
);

/** An authentication token (Pulsar). */
export const tokenOptions = secretOptions(
  'token',
  'File holding the authentication token (a JWT), sent as `Authorization: Bearer`. Never write the token itself in the config.',
  'Environment variable holding the authentication token.',
);

export interface PasswordSource {
  password_file?: string | undefined;
  password_env?: string | undefined;
}

export interface TokenSource {
  token_file?: string | undefined;
  token_env?: string | undefined;
}

interface SecretSpec {
  /** Names the secret's keys (`password` → password_file, password_env). */
  readonly name: 'password' | 'token';
  /** Who needs it, for error messages: "mqtt sink", "PostgreSQL database x at host:port". */
  readonly what: string;
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** A password is the file's first line, as written; a token is the whole file, trimmed, and never empty. */
  readonly form: 'first-line' | 'token';
}

/** Reads one secret from its file (relative to the config's folder) or variable; undefined when neither is set. */
function readSecret(file: string | undefined, env: string | undefined, baseDir: string, spec: SecretSpec): string | undefined {
  const { name, what, code, retryable } = spec;
  if (file !== undefined) {
    const path = resolve(baseDir, file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      throw new AgentError(code, `${what}: cannot read ${name}_file ${path}`, { cause, retryable });
    }
    return spec.form === 'token' ? text.trim() : (text.split(/\r?\n/, 1)[0] ?? '');
  }
  if (env !== undefined) {
    const value = process.env[env];
    if (value === undefined || (spec.form === 'token' && value.trim() === '')) {
      throw new AgentError(code, `${what}: environment variable ${env} (${name}_env) is not set`, { retryable });
    }
    return spec.form === 'token' ? value.trim() : value;
  }
  return undefined;
}

/**
 * The password from password_file or password_env, read when a connection is made. Undefined when neither
 * is configured. Errors are retryable, since a secret can be put in place while the agent runs.
 */
export function readPassword(source: PasswordSource, baseDir: string, what: string, code: ErrorCode = 'SOURCE_FAILED'): string | undefined {
  return readSecret(source.password_file, source.password_env, baseDir, { name: 'password', what, code, retryable: true, form: 'first-line' });
}

/** The token from token_file or token_env, read at each connection so a rotated token is picked up. */
export function readToken(source: TokenSource, baseDir: string, what: string): string | undefined {
  // A configuration error, reported as such when the sink connects (check-config and start-up name it).
  return readSecret(source.token_file, source.token_env, baseDir, { name: 'token', what, code: 'CONFIG_INVALID', retryable: false, form: 'token' });
}
