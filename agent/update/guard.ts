/**
 * The guard: what the last known good executable decides before every start of the unit
 * (ExecStartPre=<state>/committed/edge-agent update guard) and records after every stop
 * (ExecStopPost=… update stopped). A broken new executable never runs this code, so it cannot break its own
 * rollback: the decision is the committed version's.
 *
 * Before a start, with a trial under way, the trial version is rolled back when
 *   - its last run ended in a way that settles it: it gave up on its own health gate (exit codes below),
 *     was killed by a signal of its own making (abort, segfault: `aborted`), or by the watchdog or the start
 *     timeout (`no_health_in_time`);
 *   - the deadline passed without a commit (`no_health_in_time`);
 *   - it has been started `maxStarts` times already (`exited_at_once` when every run ended within
 *     `exitedAtOnceMs`, else `crash_loop`).
 * Otherwise the start is counted and it runs again. Runs that end with no record (kill -9 of the unit, a power
 * cut) count only as starts.
 */
import type { ReleaseStore } from './releases.ts';
import type { TrialExit, UpdateReason, UpdateResult, UpdateState } from './state.ts';

/** Exit codes a trial version ends with when its own health gate failed (agent/update/trial.ts). */
export const TRIAL_EXIT: Record<'no_health_in_time' | 'broker_unreachable' | 'canary_failed' | 'sources_failed', number> = {
  no_health_in_time: 75,
  broker_unreachable: 76,
  canary_failed: 77,
  sources_failed: 78,
};

/**
 * The exit code that restarts the unit into a trial just begun (beginTrial, then exit with it): the unit has
 * RestartForceExitStatus= and SuccessExitStatus= for it, so it restarts at once and is not counted a failure.
 */
export const RESTART_INTO_TRIAL_EXIT = 3;

export interface GuardOptions {
  /** Starts of one trial version before it is rolled back (below the unit's StartLimitBurst). */
  maxStarts: number;
  /** A run shorter than this "exited at once". */
  exitedAtOnceMs: number;
  now?: number;
}

export const GUARD_DEFAULTS: GuardOptions = { maxStarts: 3, exitedAtOnceMs: 10_000 };

export type GuardDecision =
  | { action: 'start'; version: string | undefined; trial: boolean; starts?: number }
  | { action: 'rolled_back'; result: UpdateResult; version: string | undefined };

const SELF_INFLICTED = new Set(['SIGABRT', 'SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGTRAP', 'SIGSYS', 'ABRT', 'SEGV', 'BUS', 'ILL', 'FPE', 'TRAP', 'SYS']);

export function guardStart(store: ReleaseStore, options: GuardOptions = GUARD_DEFAULTS): GuardDecision {
  const now = options.now ?? Date.now();
  const verdict = store.change((state) => {
    const trial = state.trial;
    if (!trial) return undefined;
    // The window runs from the first start: the time the unit took to come round to it is not the release's.
    if (trial.starts === 0 && trial.window_ms !== undefined) trial.deadline_at = new Date(now + trial.window_ms).toISOString();
    const settled = settlingExit(trial.exits);
    if (settled) return settled;
    // A run killed from outside (SIGKILL, SIGTERM: an operator, the OOM killer) says nothing about the release.
    const quick = trial.exits.length > 0 && trial.exits.every((e) => e.after_ms < options.exitedAtOnceMs && e.code === 'exited' && e.status !== '0');
    const runs = `${trial.starts} starts; exits: ${trial.exits.map(describeExit).join('; ') || 'none recorded'}`;
    // Which limit tripped matters less than what the runs did: runs that all ended at once are `exited_at_once`.
    if (now > Date.parse(trial.deadline_at))
      return {
        reason: quick ? ('exited_at_once' as const) : ('no_health_in_time' as const),
        message: `no commit by the trial deadline ${trial.deadline_at} (${runs})`,
      };
    if (trial.starts >= options.maxStarts) return { reason: quick ? ('exited_at_once' as const) : ('crash_loop' as const), message: `no commit after ${runs}` };
    trial.starts++;
    trial.last_start_at = new Date(now).toISOString();
    return undefined;
  });
  if (verdict) {
    const result = store.rollback(verdict.reason, verdict.message);
    if (result) return { action: 'rolled_back', result, version: store.state().committed };
  }
  store.reconcile();
  const state = store.state();
  return state.trial
    ? { action: 'start', version: state.trial.version, trial: true, starts: state.trial.starts }
    : { action: 'start', version: state.committed, trial: false };
}

/** The exit that settles a trial without another start, with the reason; undefined when none does. */
function settlingExit(exits: TrialExit[]): { reason: UpdateReason; message: string } | undefined {
  const last = exits.at(-1);
  if (!last) return undefined;
  const message = `last run: ${describeExit(last)}`;
  if (last.code === 'exited') {
    const status = Number(last.status);
    const gaveUp = Object.entries(TRIAL_EXIT).find(([, code]) => code === status);
    if (gaveUp) return { reason: gaveUp[0] as UpdateReason, message };
    return undefined;
  }
  if (last.result === 'watchdog' || last.result === 'timeout') return { reason: 'no_health_in_time', message };
  if (last.code === 'dumped' || SELF_INFLICTED.has(last.status)) return { reason: 'aborted', message };
  return undefined;
}

function describeExit(e: TrialExit): string {
  return `${e.result} (${e.code} ${e.status}) after ${(e.after_ms / 1000).toFixed(1)} s`;
}

/**
 * After a stop (ExecStopPost): how the run ended, from systemd's $SERVICE_RESULT, $EXIT_CODE and $EXIT_STATUS,
 * recorded against the trial when the run was one. Returns the record, or undefined outside a trial.
 */
export function recordStop(store: ReleaseStore, env: NodeJS.ProcessEnv, now = Date.now()): TrialExit | undefined {
  return store.change((state: UpdateState) => {
    const trial = state.trial;
    // starts 0: the run that ended is the one before the trial (it restarted the unit into it), not the trial's.
    if (!trial || trial.starts === 0) return undefined;
    const since = trial.last_start_at ?? trial.started_at;
    const exit: TrialExit = {
      at: new Date(now).toISOString(),
      after_ms: Math.max(0, now - Date.parse(since)),
      result: env.SERVICE_RESULT ?? 'unknown',
      code: env.EXIT_CODE ?? 'unknown',
      status: env.EXIT_STATUS ?? 'unknown',
    };
    trial.exits = [...trial.exits.slice(-9), exit]; // bounded: the last ten
    return exit;
  });
}
