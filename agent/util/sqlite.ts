import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { packedAddonPath } from './packed-addon.ts';

/**
 * Where the executable carries better-sqlite3's addon: scripts/build/build.ts packs the target's prebuilt
 * binary as an asset, written out on first use (agent/util/packed-addon.ts). Undefined outside the
 * executable: better-sqlite3 then finds its own prebuilt.
 */
export function nativeBindingPath(): string | undefined {
  return packedAddonPath('better-sqlite3');
}

/** Opens (creating if needed) a SQLite database file, loading the native addon the way this runtime needs. */
export function openDatabase(path: string, options: Database.Options = {}): Database.Database {
  const nativeBinding = nativeBindingPath();
  return nativeBinding === undefined ? new Database(path, options) : new Database(path, { ...options, nativeBinding });
}

/**
 * Opens (creating if needed) a database file that holds records: the file, its -wal and its -shm are 0600.
 * SQLite creates a new file 0644 (less the umask) and gives the -wal and -shm it creates later the mode of
 * the main file, so creating the main file 0600 first makes all three private; files left wider by an older
 * version are narrowed here.
 */
export function openPrivateDatabase(path: string, options: Database.Options = {}): Database.Database {
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
  return openDatabase(path, options);
}
