/**
 * Passwords written in a URL (`mqtt://gw:secret@host`): the config text is copied, shown and committed far more
 * often than a password file is, so check-config points each one out. The log redacts them either way
 * (agent/log.ts); this only says where they sit and where they should go.
 */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^\s/@:]*:[^\s/@]+@/i;

export const URL_PASSWORD_WARNING =
  'the URL carries a password; move it to password_file or password_env (the config text is copied more often than a secret file)';

/** The path of every string setting that is a URL with a password (`['sink', 'url']`, `['sources', 0, 'url']`). */
export function urlsWithPasswords(config: unknown): PropertyKey[][] {
  const found: PropertyKey[][] = [];
  const walk = (value: unknown, path: PropertyKey[]): void => {
    if (typeof value === 'string') {
      if (URL_WITH_PASSWORD.test(value)) found.push(path);
    } else if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) walk(item, [...path, i]);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) walk(item, [...path, key]);
    }
  };
  walk(config, []);
  return found;
}
