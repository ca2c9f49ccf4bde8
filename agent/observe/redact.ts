/**
 * What `tap` must never show: every secret the configuration names. Collected once per tap from the
 * loaded config: passwords written in URLs, string settings whose name says secret (password, token,
 * secret, key…), and the contents of the files secret settings point to (password files, the device's
 * private key). A record is shown with fields of such names replaced, those values cut out wherever they
 * occur, and URL passwords redacted.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { redactUrlPasswords } from '../log.ts';

export const REDACTED = '[redacted]';
const SECRET_NAME = /pass(word|phrase)?|secret|token|private|api_?key|credential|^key$|_key$/i;
const FILE_SETTING = /(password|secret|token|key|private)[a-z_]*_file$|^device_private$|^private_key$/i;
/** Values shorter than this are not cut out of text: a 2-character "secret" would shred every record. */
const MIN_SECRET = 4;

/** The configured secret values (for redaction and for the tests that grep output for them). */
export function configuredSecrets(config: unknown, baseDir: string): string[] {
  const found = new Set<string>();
  const add = (s: string) => {
    const t = s.trim();
    if (t.length >= MIN_SECRET) found.add(t);
  };
  const walk = (value: unknown, key: string): void => {
    if (typeof value === 'string') {
      const url = /^[a-z][a-z0-9+.-]*:\/\/[^\s/@:]*:([^\s/@]+)@/i.exec(value);
      if (url) {
        add(url[1]!);
        try {
          add(decodeURIComponent(url[1]!));
        } catch {}
      }
      if (FILE_SETTING.test(key)) {
        try {
          const text = readFileSync(resolve(baseDir, value), 'utf8');
          add(text);
          for (const line of text.split('\n')) add(line);
          // Key files carry a label before the key (`x25519-private <base64>`): the key alone is the secret.
          for (const word of text.split(/\s+/)) if (word.length >= 16) add(word);
        } catch {
          // Not readable here: nothing of it can be in a record we show either.
        }
      } else if (SECRET_NAME.test(key) && !key.endsWith('_env')) {
        add(value);
      }
    } else if (Array.isArray(value)) {
      for (const item of value) walk(item, key);
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, k);
    }
  };
  walk(config, '');
  // Values of variables a setting names (`password_env: MQTT_PASSWORD`).
  const envNames: string[] = [];
  const findEnv = (value: unknown, key: string): void => {
    if (typeof value === 'string' && key.endsWith('_env')) envNames.push(value);
    else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) findEnv(v, k);
  };
  findEnv(config, '');
  for (const name of envNames) if (process.env[name]) add(process.env[name]);
  // Longest first, so a secret containing another is cut out whole.
  return [...found].sort((a, b) => b.length - a.length);
}

/** A copy of `value` with secret-named fields, configured secret values and URL passwords redacted. */
export function redactValue(value: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') return redactText(value, secrets);
  // What JSON lacks, shown as the receiver's output shows it: big integers as text, dates in ISO 8601.
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) return redactValue(Object.fromEntries(value), secrets, depth + 1);
  if (depth > 32 || value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = SECRET_NAME.test(k) && v !== null && typeof v !== 'object' ? REDACTED : redactValue(v, secrets, depth + 1);
  return out;
}

export function redactText(text: string, secrets: readonly string[]): string {
  let out = redactUrlPasswords(text);
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}
