import { existsSync } from 'node:fs';
import type { KeyExchange } from './x25519.ts';
import type { Logger } from '../log.ts';
import { writeKeyPair } from './keys.ts';

/**
 * With `keys.generate_if_missing` (demo, tests): creates the device and centre key pairs the config names
 * but that do not exist yet. A real deployment generates keys with `edge-agent keygen` and copies only the
 * public halves across.
 */
export function generateMissingKeys(kx: KeyExchange, paths: { devicePrivate: string; centrePublic: string }, log: Logger): void {
  for (const [what, file] of [
    ['device', paths.devicePrivate],
    ['centre', paths.centrePublic],
  ] as const) {
    const base = file.replace(/\.(key|pub)$/, '');
    if (!existsSync(`${base}.key`) && !existsSync(`${base}.pub`)) {
      writeKeyPair(kx, base);
      log.warn({ what, base }, 'generated a new key pair (keys.generate_if_missing)');
    }
  }
}
