/**
 * Why the agent last stopped, kept in `<data_dir>/last-exit` across runs: `running` is written at start and
 * the reason (`signal SIGTERM`, `restart`, `start failed`) on a clean way out, so a start that finds
 * `running` knows the previous run ended without one (killed, crashed, power cut). Exposed as
 * `edge_last_exit_info{reason}` and on the status page.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.ts';

const FILE = 'last-exit';
export const UNCLEAN_EXIT = 'unclean (killed, crashed or power lost)';

/** Reads the previous run's exit reason (`first start` when there was none) and marks this run as running. */
export function recordStart(dataDir: string): string {
  let previous: string;
  try {
    previous = readFileSync(join(dataDir, FILE), 'utf8').trim().slice(0, 200) || 'unknown';
  } catch {
    previous = 'first start';
  }
  if (previous === 'running') previous = UNCLEAN_EXIT;
  writeExit(dataDir, 'running');
  return previous;
}

export function recordExit(dataDir: string, reason: string): void {
  writeExit(dataDir, reason);
}

function writeExit(dataDir: string, reason: string): void {
  try {
    writeFileAtomic(join(dataDir, FILE), `${reason}\n`);
  } catch {
    // The reason is a convenience for the operator; a read-only data_dir must not stop the agent.
  }
}
