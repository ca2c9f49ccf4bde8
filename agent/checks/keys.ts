/**
 * The key files a config names, checked before anything starts: they exist, parse as the kind of key the
 * setting wants (32 bytes, the right label), and a private key is readable by its owner only. Each problem
 * names the setting, so `run`, `receive` and `check-config` report it like any other config error (exit 2)
 * instead of a key error at start-up (exit 1) with only the file's name.
 */
import { statSync } from 'node:fs';
import { configPaths } from '../config/paths.ts';
import type { LoadedConfig } from '../config/load.ts';
import { x25519 } from '../keys/x25519.ts';
import { isAgentError } from '../errors.ts';
import { loadPrivateKey, loadUsablePublicKey } from '../keys/keys.ts';
import { type ConfigProblem, error, warning } from './problems.ts';

/**
 * Which keys to check. `agent`: the device's private key and the centre's public key. `receiver`: the
 * centre's private keys. `devices`: the devices' public keys (the receiver can run without a bad one, so
 * only check-config insists on them). `generating`: keys.generate_if_missing will run first (only `run`
 * does), so a key it would create may be missing.
 */
export interface KeyScope {
  readonly agent: boolean;
  readonly receiver: boolean;
  readonly devices: boolean;
  readonly generating: boolean;
}

interface KeySetting {
  readonly path: readonly PropertyKey[];
  readonly file: string;
  readonly kind: 'private' | 'public';
  /** Written in the config, or the schema's default (worth saying: the operator may not know the default). */
  readonly written: boolean;
}

/** The files keys.generate_if_missing would create: both halves of each pair of which neither exists yet. */
function generatedFiles(loaded: LoadedConfig): Set<string> {
  const paths = configPaths(loaded);
  const files = new Set<string>();
  if (!loaded.config.keys.generate_if_missing) return files;
  for (const file of [paths.devicePrivate, paths.centrePublic]) {
    const base = file.replace(/\.(key|pub)$/, '');
    if (!exists(`${base}.key`) && !exists(`${base}.pub`)) files.add(`${base}.key`).add(`${base}.pub`);
  }
  return files;
}

function exists(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch {
    return false;
  }
}

function settings(loaded: LoadedConfig, scope: KeyScope): KeySetting[] {
  const { config } = loaded;
  const paths = configPaths(loaded);
  const out: KeySetting[] = [];
  const add = (path: PropertyKey[], file: string, kind: KeySetting['kind']): void => {
    out.push({ path, file: paths.fromBase(file), kind, written: loaded.position(path)?.written ?? false });
  };
  if (scope.agent) {
    add(['keys', 'device_private'], config.keys.device_private, 'private');
    add(['keys', 'centre_public'], config.keys.centre_public, 'public');
  }
  const receiver = config.receiver;
  if (receiver && scope.receiver) {
    add(['receiver', 'private_key'], receiver.private_key, 'private');
    for (const [i, file] of receiver.extra_private_keys.entries()) add(['receiver', 'extra_private_keys', i], file, 'private');
  }
  if (receiver && scope.devices) {
    for (const [d, device] of receiver.devices.entries())
      for (const [k, file] of device.public_keys.entries()) add(['receiver', 'devices', d, 'public_keys', k], file, 'public');
  }
  return out;
}

/** Every problem with the key files `scope` asks for; none when they are all usable. */
export async function keyProblems(loaded: LoadedConfig, scope: KeyScope): Promise<ConfigProblem[]> {
  const generated = scope.generating ? generatedFiles(loaded) : new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const key of settings(loaded, scope)) {
    const note = key.written ? '' : ' (the default; set it to name another file)';
    if (!exists(key.file)) {
      if (generated.has(key.file)) {
        problems.push(warning(key.path, `${key.file} does not exist yet; keys.generate_if_missing creates a new pair at start (demo and tests only)`));
      } else {
        const hint = key.kind === 'private' ? '; create it with `edge-agent keygen`' : '; copy it from where its key pair was made';
        problems.push(error(key.path, `${key.kind} key file ${key.file} does not exist${hint}${note}`));
      }
      continue;
    }
    try {
      if (key.kind === 'private') loadPrivateKey(x25519, key.file);
      else loadUsablePublicKey(x25519, key.file);
    } catch (err) {
      if (!isAgentError(err) || !err.code.startsWith('KEY_')) throw err;
      const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
      problems.push(error(key.path, `${err.message}${cause}${note}`));
    }
  }
  return problems;
}
