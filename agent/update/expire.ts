/**
 * The trial deadline, enforced while the release runs: `edge-agent update expire`, run from the committed
 * executable by a timer (edge-agent-trial.timer, every 30 s), SIGKILLs the processes of a release whose trial
 * is past its deadline without a commit. SIGKILL, not SIGTERM: a release that exits 0 on SIGTERM would count
 * as a clean stop and not be restarted; killed, it is restarted (Restart=on-failure) through the guard, which
 * finds the deadline passed and rolls it back. This covers a release that stays up, keeps the watchdog fed
 * and never commits, which neither the watchdog nor the guard alone would end.
 */
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import type { ReleaseStore } from './releases.ts';

export interface Expired {
  version: string;
  deadline_at: string;
  killed: number[];
}

export function expireTrial(store: ReleaseStore, now = Date.now()): Expired | undefined {
  const trial = store.state().trial;
  if (!trial || trial.starts === 0 || now <= Date.parse(trial.deadline_at)) return undefined;
  let target: string;
  try {
    target = realpathSync(store.executablePath(trial.version));
  } catch {
    return { version: trial.version, deadline_at: trial.deadline_at, killed: [] };
  }
  const killed: number[] = [];
  for (const pid of runningFrom(target)) {
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // gone meanwhile, or not ours
    }
  }
  return { version: trial.version, deadline_at: trial.deadline_at, killed };
}

/** Processes whose executable is `target`, or that run it as a script (an argument resolving to it). */
function runningFrom(target: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${pid}/exe`) === target) {
        pids.push(pid);
        continue;
      }
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (args.some((arg) => arg.endsWith('/edge-agent') && safeRealpath(arg) === target)) pids.push(pid);
    } catch {
      // exited, or another user's process we cannot look into
    }
  }
  return pids;
}

function safeRealpath(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}
