/**
 * The actions a command may name: which are read-only (may come unsigned when `fleet.allow_unsigned_reads`),
 * which change the device (signed only), and how each one's arguments are checked before anything runs.
 */
import { Refusal } from '../trust/index.ts';

export const READ_ONLY_ACTIONS = new Set(['ping', 'status', 'queue.stats', 'config.get']);
export const MUTATING_ACTIONS = new Set(['flush', 'restart', 'log.level', 'source.pause', 'source.resume', 'config.apply', 'config.rollback']);
const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export function isKnownAction(action: string): boolean {
  return READ_ONLY_ACTIONS.has(action) || MUTATING_ACTIONS.has(action);
}

/** Throws `malformed` when an action's arguments are missing or of the wrong type. */
export function checkArgs(action: string, args: Record<string, unknown>): void {
  const needString = (name: string) => {
    if (typeof args[name] !== 'string' || (args[name] as string).length === 0 || (args[name] as string).length > 200) {
      throw new Refusal('malformed', `${action} needs args.${name}: a string`);
    }
  };
  switch (action) {
    case 'log.level':
      needString('level');
      if (!LOG_LEVELS.has(args.level as string)) throw new Refusal('malformed', `log.level: ${JSON.stringify(args.level)} is not a log level`);
      break;
    case 'source.pause':
    case 'source.resume':
      needString('name');
      break;
    case 'config.apply':
      if (typeof args.envelope !== 'object' || args.envelope === null)
        throw new Refusal('malformed', 'config.apply needs args.envelope: a signed config envelope');
      break;
  }
}

const SECRET_KEY = /^(password|token|secret)$|_key$/i;

/** A copy of a config with every secret-looking setting, and any password in a URL, replaced by "***" (config.get). */
export function maskSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskSecrets);
  if (typeof value === 'string') return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^\s/@:]*:)[^\s/@]+@/i, '$1***@');
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = SECRET_KEY.test(key) && item !== undefined && item !== null ? '***' : maskSecrets(item);
  return out;
}
