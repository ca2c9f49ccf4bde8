import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { getAsset, getRawAsset, isSea } from 'node:sea';
import { makeDirs } from './make-dirs.ts';

/** The native addons scripts/build/build.ts packs into the single executable, by asset name. */
export type PackedAddon = 'better-sqlite3' | 'serialport';

/**
 * Where the executable's addons are written out: EDGE_AGENT_NATIVE_CACHE, else PKG_NATIVE_CACHE_PATH (the
 * name earlier builds used), else $XDG_CACHE_HOME or ~/.cache.
 */
export function nativeCacheRoot(): string {
  const env = process.env;
  return env.EDGE_AGENT_NATIVE_CACHE || env.PKG_NATIVE_CACHE_PATH || env.XDG_CACHE_HOME || join(homedir(), '.cache');
}

const written = new Map<PackedAddon, string>();

/** The packed addons' SHA-256, computed by the build (scripts/build/build.ts writes this asset). */
let hashes: Partial<Record<PackedAddon, string>> | undefined;
function packedHash(name: PackedAddon): string {
  hashes ??= JSON.parse(getAsset('native-addons.json', 'utf8')) as Partial<Record<PackedAddon, string>>;
  const hash = hashes[name];
  if (hash === undefined) throw new Error(`the executable carries no hash for its ${name} native addon (native-addons.json)`);
  return hash;
}

/**
 * The path of a native addon packed into the single executable, written out on first use: the kernel can
 * only dlopen a file. The file sits in a directory named after the addon's hash (computed by the build),
 * so executables carrying another build of it never share it; a file already there is used when it has the
 * packed addon's size, so a start reads neither the packed addon nor the file (hashing and comparing the
 * 2.3 MB SQLite addon took 10–50 ms of every start). A file of another size (a truncated copy) is replaced.
 * Written to a temporary name and renamed, so a crash leaves no partial addon. Undefined outside the
 * executable: the package then finds its own prebuilt addon.
 */
export function packedAddonPath(name: PackedAddon): string | undefined {
  if (!isSea()) return undefined;
  const known = written.get(name);
  if (known !== undefined) return known;
  const packed = getRawAsset(`${name}.node`); // a view of the executable's mapped blob, no copy
  const dir = join(nativeCacheRoot(), 'edge-agent', packedHash(name).slice(0, 32));
  const file = join(dir, `${name}-${process.platform}-${process.arch}.node`);
  let presentBytes: number | undefined;
  try {
    presentBytes = statSync(file).size;
  } catch {
    presentBytes = undefined;
  }
  if (presentBytes !== packed.byteLength) {
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      makeDirs(dir);
      writeFileSync(tmp, Buffer.from(packed), { mode: 0o755 });
      renameSync(tmp, file);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw new Error(
        `cannot write the ${name} native addon to ${file} (set EDGE_AGENT_NATIVE_CACHE to a writable directory): ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }
  written.set(name, file);
  return file;
}
