/**
 * The local token that turns the status page from read-only into one that acts (flush, pause, resume) and
 * that `edge-agent tap` shows records with: 32 random bytes, base64url, in `<data_dir>/http-token` (mode
 * 0600, so only the agent's user and root can read it). `edge-agent status --token` prints it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { makeDirs } from '../util/make-dirs.ts';

export const TOKEN_FILE = 'http-token';
/** Where the running endpoint wrote the address it took (port 0 picks one): `status` and `tap` read it. */
export const URL_FILE = 'http.url';

export function tokenPath(dataDir: string): string {
  return join(dataDir, TOKEN_FILE);
}

export function readToken(dataDir: string): string | undefined {
  try {
    const token = readFileSync(tokenPath(dataDir), 'utf8').trim();
    return token.length >= 32 ? token : undefined;
  } catch {
    return undefined;
  }
}

/** The token in the state directory, made (0600) if there is none yet. */
export function ensureToken(dataDir: string): string {
  const known = readToken(dataDir);
  if (known !== undefined) return known;
  makeDirs(dataDir);
  const token = randomBytes(32).toString('base64url');
  writeFileAtomic(tokenPath(dataDir), `${token}\n`, 0o600);
  return token;
}

/** Constant-time comparison: the token is a secret, its check must not leak how much of a guess was right. */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
