/**
 * The `update` member of the retained status (agent/remote/status.ts): which release runs, which is
 * committed, a trial under way, and the last result (`committed`, or `failed` with its reason), so an
 * operator sees a rollback without logging in. Read from the state file at each look (a few hundred bytes,
 * every 5 s at most); undefined outside a release layout.
 */
import { describeError } from '../errors.ts';
import { locateRelease, type RunningRelease } from './locate.ts';

export interface UpdateStatus {
  release: string | undefined;
  committed: string | undefined;
  trial?: { version: string; deadline_at: string; starts: number };
  last_result?: unknown;
  broken: string[];
  error?: string;
}

export function updateStatusSource(release: RunningRelease | undefined = locateRelease()): () => UpdateStatus | undefined {
  if (!release) return () => undefined;
  return () => {
    try {
      const s = release.store.state();
      return {
        release: release.version,
        committed: s.committed,
        ...(s.trial ? { trial: { version: s.trial.version, deadline_at: s.trial.deadline_at, starts: s.trial.starts } } : {}),
        ...(s.last_result ? { last_result: s.last_result } : {}),
        broken: Object.keys(s.broken),
      };
    } catch (err) {
      return { release: release.version, committed: undefined, broken: [], error: describeError(err) };
    }
  };
}
