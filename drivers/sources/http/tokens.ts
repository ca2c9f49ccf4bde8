import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AgentError } from '../../../agent/sdk/index.ts';
import type { HttpOptions } from './options.ts';

/**
 * The bearer tokens an ingest endpoint accepts. Only their SHA-256 digests are kept, and a presented token is
 * hashed and compared with every digest in constant time, with no early exit: neither the time taken nor an
 * error says how much of a token was right, or which token matched. Tokens are never logged; errors name the
 * file or variable only.
 */
export class Tokens {
  private readonly digests: Buffer[];

  private constructor(digests: Buffer[]) {
    this.digests = digests;
  }

  static read(options: Pick<HttpOptions, 'token_file' | 'token_env'>, baseDir: string, what: string): Tokens {
    const tokens: string[] = [];
    if (options.token_file !== undefined) {
      const path = resolve(baseDir, options.token_file);
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (cause) {
        throw new AgentError('CONFIG_INVALID', `${what}: cannot read token_file ${path}`, { cause });
      }
      tokens.push(...text.split(/\r?\n/).map((t) => t.trim()));
    }
    if (options.token_env !== undefined) tokens.push((process.env[options.token_env] ?? '').trim());
    const usable = tokens.filter((t) => t.length > 0);
    if (usable.length === 0) {
      const where = options.token_file !== undefined ? `token_file ${resolve(baseDir, options.token_file)}` : `environment variable ${options.token_env}`;
      throw new AgentError('CONFIG_INVALID', `${what}: no token in ${where}`);
    }
    return new Tokens(usable.map(digest));
  }

  /** Whether an `Authorization` header carries an accepted bearer token. */
  accepts(authorization: string | undefined): boolean {
    const match = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
    const presented = digest(match?.[1] ?? '');
    let ok = false;
    for (const d of this.digests) ok = timingSafeEqual(d, presented) || ok;
    return ok && match !== null;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
