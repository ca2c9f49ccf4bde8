/**
 * Symlinks switched atomically: a new link under a temporary name, renamed over the old one (rename(2)
 * replaces the directory entry in one step, so a reader sees the old target or the new, never none), then the
 * directory fsynced so the switch survives a power cut.
 */
import { readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { syncDirectory } from '../util/atomic-file.ts';

/** Points `dir/name` at `target`; false when it pointed there already (nothing written). */
export function switchLink(dir: string, name: string, target: string): boolean {
  const link = join(dir, name);
  if (readLink(link) === target) return false;
  const temp = join(dir, `.${name}.${process.pid}.tmp`);
  rmSync(temp, { force: true });
  symlinkSync(target, temp);
  renameSync(temp, link);
  syncDirectory(dir);
  return true;
}

export function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** The version a link names (`releases/<version>`), or undefined when there is no link. */
export function linkedVersion(dir: string, name: string): string | undefined {
  const target = readLink(join(dir, name));
  return target === undefined ? undefined : basename(target);
}
