/**
 * The operator's key commands (docs/remote.md, "Operator keys"): root keys and their rotation, operator keys
 * and their certificates, revocation lists. Signing configs and commands is in fleet-sign.ts.
 *
 * A root directory holds the root private keys (`root-1.key`, …, and `root-v2-1.key`, … made by rotations),
 * their public halves, `root-vN.json` for every version, `root.json` (the newest) and `root-chain.json` (all
 * of them, the array a device behind by several versions is given).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { AgentError } from '../errors.ts';
import {
  describeKey,
  type Envelope,
  generatePair,
  KEY_ID_PATTERN,
  keyIdOf,
  loadPrivateKeyFile,
  loadPublicKeyFile,
  type RevocationsDocument,
  type RootDocument,
  rfc3339,
  signEnvelope,
  writeKeyFiles,
} from '../trust/index.ts';
import type { DefineCommand, Exit } from './command.ts';
import { collect, expiryOf, positiveInteger, readSignedFile, rootSigners, writeJson } from './fleet-files.ts';

const MAX_ROOT_KEYS = 64;

export const fleetRoot: DefineCommand = (parent: Command, exit: Exit) => {
  const group = parent
    .command('root')
    .summary('create the root keys, or rotate them to a new root version')
    .description('Root keys are kept offline; k of the n of them sign operator certificates, revocation lists and the next root version.')
    .usage('COMMAND --dir DIR [options]');
  group
    .command('init')
    .summary('write N root key pairs and root version 1, print the fleet.trust config')
    .usage('--dir DIR --keys N --threshold K [--expires 365d]')
    .requiredOption('--dir <DIR>', 'directory for the root keys and root documents (created 0700)')
    .requiredOption('--keys <N>', 'number of root keys')
    .requiredOption('--threshold <K>', 'signatures of root keys needed (k of n)')
    .option('--expires <TIME>', 'how long version 1 may be accepted (duration or RFC 3339 time)', '365d')
    .action((options: RootInitOptions) => exit(rootInitCommand(options)));
  group
    .command('rotate')
    .summary('write root version N+1, signed by the current root and by the new keys')
    .usage('--dir DIR --threshold K [--new-keys N] [--keep KEYFILE]... [--root-key KEYFILE]... [--expires 365d]')
    .requiredOption('--dir <DIR>', 'the root directory (its root.json is the current version)')
    .requiredOption('--threshold <K>', 'signatures of the new keys needed from now on')
    .option('--new-keys <N>', 'fresh root keys to create in DIR', '0')
    .option('--keep <KEYFILE>', 'a current root private key that stays in the new root; repeat', collect)
    .option('--root-key <KEYFILE>', 'a current root private key to sign with; repeat (default: every one in DIR)', collect)
    .option('--expires <TIME>', 'how long the new version may be accepted', '365d')
    .action((options: RootRotateOptions) => exit(rootRotateCommand(options)));
};

export const fleetOperator: DefineCommand = (parent: Command, exit: Exit) => {
  const group = parent.command('operator').summary('create an operator signing key, or certify one with root keys').usage('COMMAND [options]');
  group
    .command('create')
    .summary('write an operator key pair: FILE (private, 0600) and its .pub')
    .usage('--name NAME --out FILE')
    .requiredOption('--name <NAME>', 'who holds the key (shown in logs and status as the signer)')
    .requiredOption('--out <FILE>', 'private key file; the public key goes beside it (.key replaced by .pub)')
    .action((options: { name: string; out: string }) => exit(operatorCreateCommand(options)));
  group
    .command('certify')
    .summary('sign an operator certificate with root keys')
    .usage('--root-key KEYFILE... --operator PUBFILE --expires 90d --out CERT [--root ROOT.json]')
    .requiredOption('--root-key <KEYFILE>', 'root private key; repeat until the threshold is met', collect)
    .requiredOption('--operator <PUBFILE>', "the operator's public key file")
    .requiredOption('--expires <TIME>', 'how long the certificate is valid (duration or RFC 3339 time)')
    .requiredOption('--out <CERT>', 'certificate file to write')
    .option('--root <ROOT.json>', 'the current root (default: root.json beside the first root key)')
    .option('--name <NAME>', "the operator's name (default: the one in the key file)")
    .action((options: CertifyOptions) => exit(operatorCertifyCommand(options)));
};

export const fleetRevoke: DefineCommand = (parent: Command, exit: Exit) => {
  parent
    .command('revoke')
    .summary('sign a revocation list of operator keys with root keys')
    .description('A revocation list replaces the previous one: give --previous to carry its keys over (its version + 1 is the default).')
    .usage('--root-key KEYFILE... --key KEYID|PUBFILE... (--version N | --previous FILE) --out FILE [--expires 365d] [--root ROOT.json]')
    .requiredOption('--root-key <KEYFILE>', 'root private key; repeat until the threshold is met', collect)
    .option('--key <KEYID|PUBFILE>', 'key id (16 hex characters) or public key file of a key to revoke; repeat', collect)
    .option('--version <N>', 'version of this list; must be higher than the one devices have')
    .option('--previous <FILE>', 'the current revocation list, whose keys stay revoked')
    .requiredOption('--out <FILE>', 'revocation list file to write')
    .option('--expires <TIME>', 'how long devices may accept this list (once accepted it stays until a newer one)', '365d')
    .option('--root <ROOT.json>', 'the current root (default: root.json beside the first root key)')
    .action((options: RevokeOptions) => exit(revokeCommand(options)));
};

export interface RootInitOptions {
  dir: string;
  keys: string;
  threshold: string;
  expires: string;
}

export function rootInitCommand(options: RootInitOptions, now = new Date()): number {
  const count = positiveInteger(options.keys, '--keys', MAX_ROOT_KEYS);
  const threshold = positiveInteger(options.threshold, '--threshold', count);
  const expires = expiryOf(options.expires, now);
  const dir = resolve(options.dir);
  const names = Array.from({ length: count }, (_, i) => `root-${i + 1}`);
  const existing = ['root.json', ...names.map((name) => `${name}.key`)].map((file) => join(dir, file)).filter((path) => existsSync(path));
  if (existing.length > 0) throw new AgentError('USAGE', `${existing.join(', ')} exist already; refusing to overwrite a root`);
  const keys = names.map((name) => {
    const pair = generatePair();
    writeKeyFiles(join(dir, `${name}.key`), join(dir, `${name}.pub`), 'root', name, pair);
    return { ...pair, name };
  });
  const document: RootDocument = { kind: 'root', version: 1, threshold, keys: keys.map((k) => k.public), issued: rfc3339(now), expires: rfc3339(expires) };
  writeRoot(dir, signEnvelope('root', document, keys), []);
  for (const key of keys) process.stderr.write(`${join(dir, key.name)}.key: root key id ${keyIdOf(key.public)} (private, 0600: keep it offline)\n`);
  process.stderr.write(`${join(dir, 'root.json')}: root version 1, ${threshold} of ${count} keys. Put this in every device's config:\n`);
  process.stdout.write(trustSnippet(document));
  return 0;
}

export interface RootRotateOptions {
  dir: string;
  threshold: string;
  newKeys: string;
  keep?: string[];
  rootKey?: string[];
  expires: string;
}

export function rootRotateCommand(options: RootRotateOptions, now = new Date()): number {
  const dir = resolve(options.dir);
  const rootPath = join(dir, 'root.json');
  const current = readSignedFile(rootPath, 'root').document;
  const fresh = Number(options.newKeys) === 0 ? 0 : positiveInteger(options.newKeys, '--new-keys', MAX_ROOT_KEYS);
  const signers = rootSigners(options.rootKey ?? currentKeyFiles(dir, current), current, rootPath);
  const kept = (options.keep ?? []).map((path) => {
    const key = loadPrivateKeyFile(path, 'root');
    if (!current.keys.includes(key.public)) throw new AgentError('USAGE', `--keep ${path}: not a key of root version ${current.version}`);
    return key;
  });
  const version = current.version + 1;
  const names = Array.from({ length: fresh }, (_, i) => `root-v${version}-${i + 1}`);
  const existing = names.map((name) => join(dir, `${name}.key`)).filter((path) => existsSync(path));
  if (existing.length > 0) throw new AgentError('USAGE', `${existing.join(', ')} exist already; refusing to overwrite a root key`);
  const total = kept.length + fresh;
  if (total === 0) throw new AgentError('USAGE', 'the new root needs keys: give --new-keys N and/or --keep KEYFILE');
  const threshold = positiveInteger(options.threshold, '--threshold', total);
  const expires = expiryOf(options.expires, now);
  const created = names.map((name) => {
    const pair = generatePair();
    writeKeyFiles(join(dir, `${name}.key`), join(dir, `${name}.pub`), 'root', name, pair);
    return { ...pair, name };
  });
  const newKeys = [...kept, ...created];
  const document: RootDocument = { kind: 'root', version, threshold, keys: newKeys.map((k) => k.public), issued: rfc3339(now), expires: rfc3339(expires) };
  // Signed by the old root (a device at version N checks these) and by every new key (its own threshold).
  const all = new Map([...signers, ...newKeys].map((key) => [key.public, key]));
  const chain = readChain(dir);
  writeRoot(dir, signEnvelope('root', document, [...all.values()]), chain);
  for (const key of created) process.stderr.write(`${join(dir, key.name)}.key: root key id ${keyIdOf(key.public)} (private, 0600: keep it offline)\n`);
  process.stderr.write(
    `${rootPath}: root version ${version}, ${threshold} of ${total} keys, signed by ${signers.length} keys of version ${current.version}. ` +
      `Publish ${join(dir, 'root-chain.json')} on <prefix>/trust/root; devices provisioned from now on may start from:\n`,
  );
  process.stdout.write(trustSnippet(document));
  return 0;
}

export function operatorCreateCommand(options: { name: string; out: string }): number {
  const privatePath = resolve(options.out);
  const publicPath = publicPathOf(privatePath);
  const pair = generatePair();
  writeKeyFiles(privatePath, publicPath, 'operator', options.name, pair);
  process.stdout.write(`${privatePath}: operator ${JSON.stringify(options.name)}, key id ${keyIdOf(pair.public)} (private, 0600); public key ${publicPath}\n`);
  return 0;
}

export interface CertifyOptions {
  rootKey: string[];
  operator: string;
  expires: string;
  out: string;
  root?: string;
  name?: string;
}

export function operatorCertifyCommand(options: CertifyOptions, now = new Date()): number {
  const { path: rootPath, document: root } = currentRoot(options.root, options.rootKey);
  const signers = rootSigners(options.rootKey, root, rootPath);
  const operator = loadPublicKeyFile(options.operator, 'operator');
  const expires = expiryOf(options.expires, now);
  const name = options.name ?? operator.name;
  const certificate = signEnvelope(
    'operator-cert',
    { kind: 'operator-cert', name, key: operator.public, issued: rfc3339(now), expires: rfc3339(expires), root_version: root.version },
    signers,
  );
  writeJson(certificate, options.out);
  process.stderr.write(`${options.out}: ${describeKey({ ...operator, name })} certified until ${rfc3339(expires)} by root version ${root.version}\n`);
  return 0;
}

export interface RevokeOptions {
  rootKey: string[];
  key?: string[];
  version?: string;
  previous?: string;
  out: string;
  expires: string;
  root?: string;
}

export function revokeCommand(options: RevokeOptions, now = new Date()): number {
  const { path: rootPath, document: root } = currentRoot(options.root, options.rootKey);
  const signers = rootSigners(options.rootKey, root, rootPath);
  const previous = options.previous === undefined ? undefined : readSignedFile(options.previous, 'revocations').document;
  const version = options.version !== undefined ? positiveInteger(options.version, '--version') : previous ? previous.version + 1 : missingVersion();
  if (previous && version <= previous.version)
    throw new AgentError('USAGE', `--version ${version} is not above version ${previous.version} of ${options.previous}; devices would refuse it`);
  const added = (options.key ?? []).map((key) => (KEY_ID_PATTERN.test(key) ? key : keyIdOf(loadPublicKeyFile(key).public)));
  const keys = [...new Set([...(previous?.keys ?? []), ...added])];
  if (keys.length === 0) throw new AgentError('USAGE', 'nothing to revoke: give --key KEYID|PUBFILE or --previous FILE');
  const expires = expiryOf(options.expires, now);
  const document: RevocationsDocument = { kind: 'revocations', version, keys, issued: rfc3339(now), expires: rfc3339(expires) };
  writeJson(signEnvelope('revocations', document, signers), options.out);
  process.stderr.write(`${options.out}: revocation list version ${version}, ${keys.length} key${keys.length === 1 ? '' : 's'} revoked: ${keys.join(', ')}\n`);
  return 0;
}

function missingVersion(): never {
  throw new AgentError('USAGE', 'give --version N (above the version devices have) or --previous FILE');
}

/** `--root FILE`, or root.json beside the first root key: the root whose keys must sign. */
function currentRoot(given: string | undefined, rootKeys: readonly string[]): { path: string; document: RootDocument } {
  const path = given ?? join(dirname(resolve(rootKeys[0] ?? '.')), 'root.json');
  if (given === undefined && !existsSync(path))
    throw new AgentError('USAGE', `no ${path} beside the root key: give --root ROOT.json (written by fleet root init or rotate)`);
  return { path, document: readSignedFile(path, 'root').document };
}

/** The private key files in `dir` that are keys of `root`. */
function currentKeyFiles(dir: string, root: RootDocument): string[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.key'))
    .map((file) => join(dir, file))
    .filter((path) => {
      try {
        return root.keys.includes(loadPrivateKeyFile(path, 'root').public);
      } catch {
        return false; // not a root key of this version: rotate signs with the ones that are
      }
    });
}

function writeRoot(dir: string, envelope: Envelope, chain: Envelope[]): void {
  const version = (JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as RootDocument).version;
  writeJson(envelope, join(dir, `root-v${version}.json`));
  writeJson([...chain, envelope], join(dir, 'root-chain.json'));
  writeJson(envelope, join(dir, 'root.json'));
}

function readChain(dir: string): Envelope[] {
  const path = join(dir, 'root-chain.json');
  if (!existsSync(path)) return [];
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (Array.isArray(value)) return value as Envelope[];
  } catch (cause) {
    throw new AgentError('USAGE', `${path} is not JSON`, { cause });
  }
  throw new AgentError('USAGE', `${path} is not an array of root envelopes`);
}

function publicPathOf(privatePath: string): string {
  return privatePath.endsWith('.key') ? `${privatePath.slice(0, -4)}.pub` : `${privatePath}.pub`;
}

/** The `fleet.trust` section a device needs to trust `root`. */
function trustSnippet(root: RootDocument): string {
  return `fleet:\n  trust:\n    threshold: ${root.threshold}\n    root_keys:\n${root.keys.map((key) => `      - ${key}  # ${keyIdOf(key)}\n`).join('')}`;
}
