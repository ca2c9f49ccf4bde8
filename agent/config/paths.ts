import { resolve } from 'node:path';
import type { LoadedConfig } from './load.ts';

/** Where relative paths of a config land: config-relative, data files inside data_dir. */
export function configPaths(loaded: LoadedConfig) {
  const { config, baseDir } = loaded;
  const dataDir = resolve(baseDir, config.data_dir);
  return {
    baseDir,
    dataDir,
    queue: resolve(dataDir, config.queue.path),
    devicePrivate: resolve(baseDir, config.keys.device_private),
    centrePublic: resolve(baseDir, config.keys.centre_public),
    fromBase: (p: string) => resolve(baseDir, p),
    fromData: (p: string) => resolve(dataDir, p),
  };
}
