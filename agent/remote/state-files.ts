/**
 * The small files remote control keeps in `<data_dir>/remote/` (0700, files 0600): the session counter and
 * why the last run ended. Written whole through a temporary file and a rename, so a kill leaves the old or the
 * new content, never half of one.
 */
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { makeDirs } from '../util/make-dirs.ts';

export function remoteStateDir(dataDir: string): string {
  const dir = join(dataDir, 'remote');
  makeDirs(dir);
  chmodSync(dir, 0o700);
  return dir;
}

export function writeStateFile(path: string, text: string): void {
  writeFileAtomic(path, text);
}

export function readStateFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Reads the counter, adds one, and writes it back before anything is published with it. */
export function nextSession(dir: string): number {
  const path = join(dir, 'session');
  const previous = Number.parseInt(readStateFile(path) ?? '0', 10);
  const session = (Number.isSafeInteger(previous) && previous > 0 ? previous : 0) + 1;
  writeStateFile(path, `${session}\n`);
  return session;
}

export interface LastExit {
  reason: string;
  at: string | undefined;
}

/**
 * Why the previous run ended: what it wrote on its way out, or `unclean` (killed, crashed, power cut) when a
 * previous run existed and left nothing. The file is consumed, so the next unclean end is seen as one.
 */
export function takeLastExit(dir: string, session: number): LastExit | undefined {
  const path = join(dir, 'last_exit.json');
  const text = readStateFile(path);
  rmSync(path, { force: true });
  if (text !== undefined) {
    try {
      const parsed = JSON.parse(text) as LastExit;
      if (typeof parsed.reason === 'string') return { reason: parsed.reason, at: typeof parsed.at === 'string' ? parsed.at : undefined };
    } catch {
      // A damaged file says as much as a missing one.
    }
  }
  return session > 1 ? { reason: 'unclean', at: undefined } : undefined;
}

export function recordExit(dir: string, reason: string): void {
  writeStateFile(join(dir, 'last_exit.json'), JSON.stringify({ reason, at: new Date().toISOString() }));
}
