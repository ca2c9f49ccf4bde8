/**
 * Which release layout, if any, the running process belongs to: EDGE_AGENT_UPDATE_DIR when set (the unit
 * sets it), else the layout the executable itself sits in (`<root>/releases/<version>/edge-agent`, seen
 * through the symlinks). Outside a layout (a development run, a copied executable) there is none, and
 * nothing about self-update happens.
 */
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ReleaseStore } from './releases.ts';
import { STATE_FILE } from './state.ts';

export interface RunningRelease {
  store: ReleaseStore;
  /** The release version this process runs (its directory), undefined when it runs from outside the layout. */
  version: string | undefined;
}

export function locateRelease(env: NodeJS.ProcessEnv = process.env, execPath = process.execPath): RunningRelease | undefined {
  let exe: string;
  try {
    exe = realpathSync(execPath);
  } catch {
    exe = execPath;
  }
  const versionDir = dirname(exe);
  const fromExe = basename(dirname(versionDir)) === 'releases' ? dirname(dirname(versionDir)) : undefined;
  const root = env.EDGE_AGENT_UPDATE_DIR || fromExe;
  if (!root || !existsSync(join(root, STATE_FILE))) return undefined;
  let rootReal: string;
  try {
    rootReal = realpathSync(root);
  } catch {
    return undefined;
  }
  const version = fromExe !== undefined && realpathSync(fromExe) === rootReal ? basename(versionDir) : undefined;
  return { store: new ReleaseStore(root), version };
}
