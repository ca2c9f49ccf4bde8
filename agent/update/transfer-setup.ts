/**
 * Puts the delivery together for `run`: the release store (EDGE_AGENT_UPDATE_DIR, the layout the executable
 * runs from, or `fleet.update.releases_dir`), the maintenance window and alarm-backlog gate, and the exit that
 * hands over to the new version.
 */
import { resolve } from 'node:path';
import { inWindow } from '../config/fleet-update-schema.ts';
import type { LoadedConfig } from '../config/load.ts';
import { configPaths } from '../config/paths.ts';
import { AgentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { remoteStateDir } from '../remote/state-files.ts';
import type { RemoteExtensionFactory } from '../remote/seams.ts';
import type { RunningAgent } from '../runtime/agent.ts';
import { VERSION } from '../version.ts';
import type { RunningRelease } from './locate.ts';
import { ReleaseStore } from './releases.ts';
import { UpdateDelivery } from './transfer-agent.ts';

/**
 * The exit code of a process that ends so that the service starts the new version: the unit restarts at once
 * on it (RestartForceExitStatus=) without counting a failure; the guard then starts `current`, the release in
 * trial. One constant, the guard's, so the unit and the hand-over cannot disagree.
 */
export { RESTART_INTO_TRIAL_EXIT } from './guard.ts';

export function updateDeliveryFactory(
  loaded: LoadedConfig,
  agent: () => RunningAgent,
  release: RunningRelease | undefined,
  restartIntoTrial: (version: string) => void,
  log: Logger,
): RemoteExtensionFactory | undefined {
  const settings = loaded.config.fleet.update;
  if (!settings.enabled) return undefined;
  const { baseDir, dataDir } = configPaths(loaded);
  const store = settings.releases_dir ? new ReleaseStore(resolve(baseDir, settings.releases_dir)) : release?.store;
  if (!store)
    throw new AgentError(
      'CONFIG_INVALID',
      'fleet.update.enabled: this executable runs outside a release layout (edge-agent install); set fleet.update.releases_dir or EDGE_AGENT_UPDATE_DIR',
    );
  const priorities = loaded.config.streams;
  const alarmsQueued = (): string | undefined => {
    const streams = agent().status().queue.streams ?? {};
    const draining = Object.entries(streams).filter(([name, s]) => s.records > 0 && (priorities[name]?.priority ?? 50) >= settings.alarm_priority);
    return draining.length > 0 ? `alarm backlog draining (${draining.map(([n, s]) => `${n}: ${s.records} records`).join(', ')})` : undefined;
  };
  return (context) =>
    new UpdateDelivery({
      context,
      releases: store,
      settings: {
        maxBytes: settings.max_bytes,
        inFlight: settings.in_flight,
        retryMs: settings.retry_after,
        trialDeadlineMs: settings.trial_deadline,
        mustWait: (now) => (inWindow(settings.window, now) ? alarmsQueued() : `outside the maintenance window ${settings.window} (UTC)`),
      },
      runningVersion: release?.version ?? VERSION,
      arch: process.arch,
      localSource: process.env.EDGE_AGENT_UPDATE_LOCAL_SOURCE || process.execPath,
      stateDir: remoteStateDir(dataDir),
      restartIntoTrial,
      log: log.child({ component: 'update' }),
    });
}
