/**
 * The running side of a trial: a process started from `releases/<v>` while the state says `v` is in trial
 * runs the health gate of agent/runtime/health.ts (sources up, sink connected, a canary batch acknowledged)
 * until the trial deadline, and commits itself when it passes. When it fails, the process ends with an exit
 * code naming what failed (TRIAL_EXIT in guard.ts); the rollback itself is the guard's, run from the
 * committed executable before the next start. A version that hangs never gets here: the watchdog or the
 * start timeout ends it, and the guard rolls it back too.
 */
import type { Logger } from '../log.ts';
import type { HealthResult } from '../runtime/health.ts';
import { TRIAL_EXIT } from './guard.ts';
import type { RunningRelease } from './locate.ts';

export interface TrialAgent {
  health(sinceMs: number, deadlineMs: number, label?: string): Promise<HealthResult>;
}

const EXIT_FOR: Record<'sources' | 'sink' | 'canary', number> = {
  sources: TRIAL_EXIT.sources_failed,
  sink: TRIAL_EXIT.broker_unreachable,
  canary: TRIAL_EXIT.canary_failed,
};

/**
 * Undefined when this process is not a release in trial. Else a promise that resolves with the exit code to
 * end with if the gate fails, and never resolves once the release is committed.
 */
export function watchTrial(release: RunningRelease | undefined, agent: () => TrialAgent, sinceMs: number, log: Logger): Promise<number> | undefined {
  if (!release?.version) return undefined;
  const { store, version } = release;
  const trial = store.state().trial;
  if (trial?.version !== version) return undefined;
  const remaining = Math.max(1_000, Date.parse(trial.deadline_at) - Date.now());
  log.info({ release: version, from: trial.from, deadline_at: trial.deadline_at, start: trial.starts }, 'new release in trial: commits once healthy');
  return agent()
    .health(sinceMs, remaining, `release ${version}`)
    .then(
      (health) => {
        if (!health.ok) {
          log.error(
            { release: version, failed: health.failed, detail: health.detail },
            'new release failed its health gate; ending for the guard to roll it back',
          );
          return EXIT_FOR[health.failed];
        }
        const result = store.commit(version);
        log.info({ release: version, took_ms: Date.now() - Date.parse(trial.started_at), result }, 'new release healthy: committed');
        return new Promise<number>(() => {});
      },
      (err: unknown) => {
        log.error({ release: version, err }, 'the health gate of the new release failed to run; ending for the guard to roll it back');
        return TRIAL_EXIT.no_health_in_time;
      },
    );
}
