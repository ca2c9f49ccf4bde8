/** What the operator's fleet key commands share: reading signed files, times given as "90d", writing output. */
import { readFileSync, writeFileSync } from 'node:fs';
import { AgentError } from '../errors.ts';
import {
  DEFAULT_MAX_ENVELOPE_BYTES,
  type DocumentKind,
  type DocumentOf,
  decodeDocument,
  type Envelope,
  isRefusal,
  keyIdOf,
  loadPrivateKeyFile,
  type PrivateKeyFile,
  parseEnvelope,
  type RootDocument,
} from '../trust/index.ts';
import { parseDuration } from '../util/units.ts';

/** A signed file this tool wrote (root, certificate, revocation list): its envelope and document. */
export function readSignedFile<K extends DocumentKind>(path: string, kind: K): { envelope: Envelope; document: DocumentOf[K] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new AgentError('USAGE', `cannot read ${path}`, { cause });
  }
  try {
    const parsed = parseEnvelope(text, DEFAULT_MAX_ENVELOPE_BYTES);
    if (parsed.kind !== kind) throw new AgentError('USAGE', `${path} holds a ${parsed.kind} envelope, not a ${kind}`);
    return { envelope: parsed.raw, document: decodeDocument(kind, parsed.payload) };
  } catch (cause) {
    if (isRefusal(cause)) throw new AgentError('USAGE', `${path} is not a signed ${kind} document: ${cause.message}`, { cause });
    throw cause;
  }
}

/** `--expires 90d` (from now) or an RFC 3339 time; the result as RFC 3339 UTC. */
export function expiryOf(text: string, now: Date, option = '--expires'): Date {
  const ms = parseDuration(text);
  if (ms !== undefined && ms > 0) return new Date(now.getTime() + ms);
  const at = Date.parse(text);
  if (/^\d{4}-\d{2}-\d{2}T/.test(text) && Number.isFinite(at) && at > now.getTime()) return new Date(at);
  throw new AgentError('USAGE', `${option} ${JSON.stringify(text)}: expected a duration such as 5m, 7d or 90d, or a future RFC 3339 time`);
}

export function positiveInteger(text: string, option: string, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1 || value > max)
    throw new AgentError('USAGE', `${option} ${JSON.stringify(text)}: expected a whole number from 1${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`);
  return value;
}

/** JSON to `out` (0644: signed documents are public) or to stdout. */
export function writeJson(value: unknown, out: string | undefined): void {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (out === undefined) process.stdout.write(text);
  else
    try {
      writeFileSync(out, text, { mode: 0o644 });
    } catch (cause) {
      throw new AgentError('USAGE', `cannot write ${out}`, { cause });
    }
}

/**
 * The root private keys given, checked against the root they must sign for: each one of its keys, at least
 * its threshold of them (a device would refuse fewer with threshold_not_met).
 */
export function rootSigners(paths: readonly string[], root: Pick<RootDocument, 'version' | 'keys' | 'threshold'>, rootPath: string): PrivateKeyFile[] {
  const signers = new Map<string, PrivateKeyFile>();
  for (const path of paths) {
    const key = loadPrivateKeyFile(path, 'root');
    if (!root.keys.includes(key.public))
      throw new AgentError('USAGE', `${path} (key id ${keyIdOf(key.public)}) is not a key of root version ${root.version} (${rootPath})`);
    signers.set(key.public, key);
  }
  if (signers.size < root.threshold)
    throw new AgentError('USAGE', `root version ${root.version} (${rootPath}) needs ${root.threshold} of its keys, ${signers.size} given (--root-key)`);
  return [...signers.values()];
}

export const collect = (value: string, previous: string[] = []) => [...previous, value];
