import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { AgentError } from '../errors.ts';
import { x25519 } from '../keys/x25519.ts';
import { hex, keyId, loadPublicKey, writeKeyPair } from '../keys/keys.ts';
import type { DefineCommand } from './command.ts';

export const keygen: DefineCommand = (parent: Command, exit) => {
  parent
    .command('keygen')
    .summary('write X25519 key pairs (default: device and centre in ./keys)')
    .description('Write X25519 key pairs: DIR/NAME.key (private, mode 0600) and DIR/NAME.pub. Refuses to overwrite a private key.')
    .usage('[--dir DIR] [--name NAME]...')
    .option('--dir <DIR>', 'directory for the keys', 'keys')
    .option('--name <NAME>', 'key pair name; repeat for more (default: device and centre)', (name: string, names: string[] = []) => [...names, name])
    .action(async (options: KeygenOptions) => exit(await keygenCommand(options)));
};

export interface KeygenOptions {
  dir: string;
  name?: string[];
}

/** Writes X25519 key pairs: `<dir>/<name>.key` (0600) and `<dir>/<name>.pub`. */
export async function keygenCommand(values: KeygenOptions): Promise<number> {
  const names = values.name && values.name.length > 0 ? values.name : ['device', 'centre'];
  // Refuse before writing anything: stopping half-way would leave a new device key beside an old centre key.
  const existing = names.map((name) => `${resolve(values.dir, name)}.key`).filter((path) => existsSync(path));
  if (existing.length > 0)
    throw new AgentError('USAGE', `${existing.join(', ')} exist${existing.length === 1 ? 's' : ''} already; refusing to overwrite a private key`);
  for (const name of names) {
    const { privatePath, publicPath } = writeKeyPair(x25519, resolve(values.dir, name));
    process.stdout.write(`${name}: ${privatePath} (private, 0600), ${publicPath} (public, key id ${hex(keyId(loadPublicKey(publicPath)))})\n`);
  }
  return 0;
}
