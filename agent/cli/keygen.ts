import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { AgentError } from '../errors.ts';
import { sodium } from '../envelope/sodium.ts';
import { hex, keyId, loadPublicKey, writeKeyPair } from '../keys/keys.ts';
import { parseArgs } from 'node:util';
import { usage } from './usage.ts';

/** Writes X25519 key pairs: `<dir>/<name>.key` (0600) and `<dir>/<name>.pub`. */
export async function keygenCommand(args: string[]): Promise<number> {
  const { values } = usage(() => parseArgs({ args, options: { dir: { type: 'string', default: 'keys' }, name: { type: 'string', multiple: true } } }));
  const names = values.name && values.name.length > 0 ? values.name : ['device', 'centre'];
  // Refuse before writing anything: stopping half-way would leave a new device key beside an old centre key.
  const existing = names.map((name) => `${resolve(values.dir, name)}.key`).filter((path) => existsSync(path));
  if (existing.length > 0)
    throw new AgentError('USAGE', `${existing.join(', ')} exist${existing.length === 1 ? 's' : ''} already; refusing to overwrite a private key`);
  const na = await sodium();
  for (const name of names) {
    const { privatePath, publicPath } = writeKeyPair(na, resolve(values.dir, name));
    process.stdout.write(`${name}: ${privatePath} (private, 0600), ${publicPath} (public, key id ${hex(keyId(loadPublicKey(publicPath)))})\n`);
  }
  return 0;
}
