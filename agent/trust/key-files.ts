/**
 * Ed25519 key files: JSON naming their type, role and name, so a public key given where a private one
 * belongs, or an operator key where a root key belongs, is caught with a message that names the file.
 */
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AgentError } from '../errors.ts';
import { decodeKey, type Ed25519Pair, keyIdOf, pairFromSeed } from './ed25519.ts';
import { makeDirs } from '../util/make-dirs.ts';

export type KeyRole = 'root' | 'operator';
export const PRIVATE_KEY_TYPE = 'edge-agent-ed25519-private';
export const PUBLIC_KEY_TYPE = 'edge-agent-ed25519-public';
const MAX_KEY_FILE_BYTES = 4096;

export interface PublicKeyFile {
  type: typeof PUBLIC_KEY_TYPE;
  role: KeyRole;
  name: string;
  public: string;
}

export interface PrivateKeyFile extends Ed25519Pair {
  type: typeof PRIVATE_KEY_TYPE;
  role: KeyRole;
  name: string;
}

/** Writes a private key (0600, never over an existing file) and its public key beside it (0644). */
export function writeKeyFiles(privatePath: string, publicPath: string, role: KeyRole, name: string, pair: Ed25519Pair): void {
  if (existsSync(privatePath)) throw new AgentError('USAGE', `${privatePath} exists already; refusing to overwrite a private key`);
  makeDirs(dirname(privatePath));
  makeDirs(dirname(publicPath));
  const file: PrivateKeyFile = { type: PRIVATE_KEY_TYPE, role, name, public: pair.public, private: pair.private };
  writeFileSync(privatePath, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(privatePath, 0o600); // the umask may have narrowed it, never widened it; make it exact
  writeFileSync(publicPath, `${JSON.stringify(publicFileOf(file), null, 2)}\n`, { mode: 0o644 });
}

export function publicFileOf(key: PublicKeyFile | PrivateKeyFile): PublicKeyFile {
  return { type: PUBLIC_KEY_TYPE, role: key.role, name: key.name, public: key.public };
}

/** Loads a private key, refusing one that anyone but its owner can read or write, or whose halves differ. */
export function loadPrivateKeyFile(path: string, role?: KeyRole): PrivateKeyFile {
  const value = readKeyJson(path);
  if (value.type !== PRIVATE_KEY_TYPE)
    throw new AgentError('KEY_INVALID', `${path} is not an Ed25519 private key file (type ${JSON.stringify(value.type)}, expected ${PRIVATE_KEY_TYPE})`);
  const common = checkCommon(path, value, role);
  const seed = decodeKey(value.private);
  if (!seed) throw new AgentError('KEY_INVALID', `${path}: "private" is not the base64url of 32 bytes`);
  const mode = statSync(path).mode;
  if ((mode & 0o077) !== 0)
    throw new AgentError('KEY_PERMISSIONS', `private key ${path} is accessible by others (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
  if (pairFromSeed(seed).public !== common.public) throw new AgentError('KEY_INVALID', `${path}: the public key is not the private key's`);
  return { ...common, type: PRIVATE_KEY_TYPE, private: value.private as string };
}

/** Loads a public key file; a private key file is taken too (its public half), since it holds one. */
export function loadPublicKeyFile(path: string, role?: KeyRole): PublicKeyFile {
  const value = readKeyJson(path);
  if (value.type === PRIVATE_KEY_TYPE) return publicFileOf(loadPrivateKeyFile(path, role));
  if (value.type !== PUBLIC_KEY_TYPE)
    throw new AgentError('KEY_INVALID', `${path} is not an Ed25519 public key file (type ${JSON.stringify(value.type)}, expected ${PUBLIC_KEY_TYPE})`);
  return checkCommon(path, value, role);
}

function checkCommon(path: string, value: Record<string, unknown>, role: KeyRole | undefined): PublicKeyFile {
  if (value.role !== 'root' && value.role !== 'operator') throw new AgentError('KEY_INVALID', `${path}: "role" must be root or operator`);
  if (role !== undefined && value.role !== role) throw new AgentError('KEY_INVALID', `${path} is ${article(value.role)} key, not ${article(role)} key`);
  if (typeof value.name !== 'string' || value.name.length === 0) throw new AgentError('KEY_INVALID', `${path}: "name" must be a non-empty string`);
  if (!decodeKey(value.public)) throw new AgentError('KEY_INVALID', `${path}: "public" is not the base64url of a 32-byte key`);
  return { type: PUBLIC_KEY_TYPE, role: value.role, name: value.name, public: value.public as string };
}

function readKeyJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    if (statSync(path).size > MAX_KEY_FILE_BYTES) throw new AgentError('KEY_INVALID', `${path} is too large for a key file`);
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    if (cause instanceof AgentError) throw cause;
    throw new AgentError('KEY_UNREADABLE', `cannot read key file ${path}`, { cause });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new AgentError('KEY_INVALID', `${path} is not an Ed25519 key file (not JSON)`, { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AgentError('KEY_INVALID', `${path} is not an Ed25519 key file`);
  return value as Record<string, unknown>;
}

export function describeKey(key: PublicKeyFile): string {
  return `${key.role} key ${JSON.stringify(key.name)} (key id ${keyIdOf(key.public)})`;
}

const article = (role: KeyRole) => (role === 'operator' ? 'an operator' : 'a root');
