import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';

/** Set by pkg's bootstrap inside the single executable; absent under plain `node`. */
interface PkgProcess {
  pkg?: { entrypoint: string };
}

/**
 * Where the executable carries better-sqlite3's addon: scripts/build/build.ts copies the target's prebuilt
 * binary next to the bundle as `native/better-sqlite3-<platform>-<arch>.node` and pkg.config.json packs it
 * as an asset. pkg unpacks it to its native cache (PKG_NATIVE_CACHE_PATH, default ~/.cache/pkg/<sha256>/) at
 * the first dlopen. Undefined outside the executable: better-sqlite3 then finds its own prebuilt.
 */
export function nativeBindingPath(): string | undefined {
  const pkg = (process as unknown as PkgProcess).pkg;
  if (!pkg) return undefined;
  return join(dirname(pkg.entrypoint), 'native', `better-sqlite3-${process.platform}-${process.arch}.node`);
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
