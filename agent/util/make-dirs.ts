import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Creates `dir` and its missing parents, each with `mode` (0700 by default: the agent's directories are its
 * own), like `mkdirSync(dir, { recursive: true })`, which is not used because it never returns when mkdir
 * answers ENOENT under a parent that exists, as /proc and /sys do: a data_dir under one of them left the agent
 * spinning at start, deaf to SIGTERM. One level at a time, the level that cannot be made throws its own error.
 */
export function makeDirs(dir: string, mode = 0o700): void {
  const missing: string[] = [];
  for (let at = resolve(dir); !exists(at); at = dirname(at)) {
    missing.push(at);
    if (dirname(at) === at) break;
  }
  for (const level of missing.reverse()) {
    try {
      mkdirSync(level, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
