/**
 * The update state file, `<root>/update-state.json`: the single source of truth of what runs. The symlinks
 * (`current`, `previous`, `committed`) are derived from it and put right by `ReleaseStore.reconcile()` (the
 * guard calls it before every start), so a crash between writing this file and switching a link is repaired
 * on the next start. Written whole through agent/util/atomic-file.ts: old content or new, never half.
 */
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import type { ReleaseArch } from './elf.ts';

/**
 * Why a version was refused or rolled back; stable codes, reported as they are.
 * Stage time: `not_elf`, `wrong_arch`, `sha256_mismatch`, `broken` (marked broken before), `older_release`.
 * Trial: `exited_at_once`, `aborted` (killed by a signal of its own, SIGABRT/SIGSEGV…), `crash_loop`,
 * `no_health_in_time`, `broker_unreachable` (health gate: sink not connected), `canary_failed`,
 * `sources_failed`, `watchdog` (stopped pinging), `operator`.
 */
export type UpdateReason =
  | 'not_elf'
  | 'wrong_arch'
  | 'sha256_mismatch'
  | 'broken'
  | 'older_release'
  | 'exited_at_once'
  | 'aborted'
  | 'crash_loop'
  | 'no_health_in_time'
  | 'broker_unreachable'
  | 'canary_failed'
  | 'sources_failed'
  | 'watchdog'
  | 'operator';

/** How one start of a trial version ended, as the unit's ExecStopPost hook saw it (systemd's variables). */
export interface TrialExit {
  at: string;
  /** Milliseconds from the start the guard allowed to this exit. */
  after_ms: number;
  /** systemd's $SERVICE_RESULT: success, exit-code, signal, core-dump, watchdog, timeout, … */
  result: string;
  /** $EXIT_CODE (exited, killed, dumped) and $EXIT_STATUS (a number or a signal name). */
  code: string;
  status: string;
}

export interface Trial {
  version: string;
  /** The committed version the trial started from (what a rollback restores). */
  from: string | undefined;
  started_at: string;
  /** The time the release has to commit, counted from its first start (a slow restart does not eat it). */
  window_ms: number;
  /** started_at + window_ms until the first start, then that start + window_ms (set by the guard). */
  deadline_at: string;
  /** Starts the guard allowed in this trial (a start beyond the limit is a rollback instead). */
  starts: number;
  last_start_at: string | undefined;
  exits: TrialExit[];
}

export interface ReleaseInfo {
  release_counter: number;
  sha256: string;
  arch: ReleaseArch;
  staged_at: string;
}

/** The outcome of the last update, kept for the retained status until the next one. */
export interface UpdateResult {
  version: string;
  outcome: 'committed' | 'failed';
  reason?: UpdateReason;
  message?: string;
  /** The version running after it: the new one when committed, the restored one when failed. */
  running: string | undefined;
  at: string;
}

export interface UpdateState {
  format: 1;
  committed: string | undefined;
  /** The committed version before the current committed one (kept on disk for an operator's way back). */
  previous: string | undefined;
  trial: Trial | undefined;
  broken: Record<string, { reason: UpdateReason; message?: string; at: string }>;
  highest_release_counter: number;
  releases: Record<string, ReleaseInfo>;
  last_result: UpdateResult | undefined;
}

export const STATE_FILE = 'update-state.json';

export function emptyState(): UpdateState {
  return {
    format: 1,
    committed: undefined,
    previous: undefined,
    trial: undefined,
    broken: {},
    highest_release_counter: 0,
    releases: {},
    last_result: undefined,
  };
}

export function readState(root: string): UpdateState {
  const path = join(root, STATE_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw new AgentError('APPLY_FAILED', `cannot read the update state ${path}`, { cause: err });
  }
  let parsed: Partial<UpdateState>;
  try {
    parsed = JSON.parse(text) as Partial<UpdateState>;
  } catch (err) {
    throw new AgentError('APPLY_FAILED', `the update state ${path} is not JSON`, { cause: err });
  }
  if (parsed.format !== 1) throw new AgentError('APPLY_FAILED', `the update state ${path} has format ${String(parsed.format)}; this version reads 1`);
  return { ...emptyState(), ...parsed };
}

export function writeState(root: string, state: UpdateState): void {
  // JSON.stringify drops undefined members; readState puts them back from emptyState().
  writeFileAtomic(join(root, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}

/**
 * Runs `change` on the state under an exclusive lock file (the guard, the stop hook, the running agent and an
 * operator's command may touch the state at once). A lock left by a killed process (its pid is gone) is taken over.
 */
export function withStateLock<T>(root: string, change: () => T): T {
  const lock = join(root, 'update-state.lock');
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      try {
        writeSync(fd, String(process.pid));
        // The state write below fsyncs this directory, which makes the lock's name durable: its content must be
        // durable first, or a power cut leaves an empty lock that the next start (the guard) waits out.
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (holderGone(lock) || attempt > 2000) rmSync(lock, { force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5); // 5 ms; the holder is quick
    }
  }
  try {
    return change();
  } finally {
    rmSync(lock, { force: true });
  }
}

function holderGone(lock: string): boolean {
  let text: string;
  try {
    text = readFileSync(lock, 'utf8');
  } catch {
    return false; // removed meanwhile: the next attempt takes it
  }
  if (text === '') return false; // just created, pid not written yet (a holder killed right there times out)
  const pid = Number(text);
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
