import { resolve } from 'node:path';
import { sodium } from '../envelope/sodium.ts';
import { hex, keyId, loadPublicKey, writeKeyPair } from '../keys/keys.ts';
import { parseArgs } from 'node:util';
import { usage } from './usage.ts';

/** Writes X25519 key pairs: `<dir>/<name>.key` (0600) and `<dir>/<name>.pub`. */
export async function keygenCommand(args: string[]): Promise<number> {
  const { values } = usage(() => parseArgs({ args, options: { dir: { type: 'string', default: 'keys' }, name: { type: 'string', multiple: true } } }));
  const names = values.name && values.name.length > 0 ? values.name : ['device', 'centre'];
  const na = await sodium();
  for (const name of names) {
    const { privatePath, publicPath } = writeKeyPair(na, resolve(values.dir, name));
    process.stdout.write(`${name}: ${privatePath} (private, 0600), ${publicPath} (public, key id ${hex(keyId(loadPublicKey(publicPath)))})\n`);
  }
  return 0;
}
