/**
 * Starting the agent on its effective configuration: the local file plus the layers last committed. A
 * `pending.json` left behind means the process died between an apply and its commit: the change is
 * discarded, the agent starts on the last known good (for a local reload, the local file's last committed
 * content rather than the file), and the outcome is reported as `rolled_back`, reason `interrupted`.
 */
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { LoadedConfig } from '../config/load.ts';
import { configPaths } from '../config/paths.ts';
import type { RecordOutput } from '../receiver/output.ts';
import { type RunningAgent, startAgent } from '../runtime/agent.ts';
import { stableJson } from '../runtime/config-diff.ts';
import type { Telemetry } from '../telemetry/registry.ts';
import { buildEffective, type ConfigReport, ConfigPipeline, type LocalLayer } from './config-pipeline.ts';
import { type CommittedState, ConfigState, type PendingState } from './config-state.ts';

export interface RemoteConfigStart {
  agent: RunningAgent;
  pipeline: ConfigPipeline;
  /** The report of a change the previous process did not finish (`rolled_back`, `interrupted`), if any. */
  interrupted: ConfigReport | undefined;
}

export async function startWithRemoteConfig(
  local: LoadedConfig,
  log: Logger,
  options: { localPath?: string; receiverOutput?: RecordOutput; telemetry?: Telemetry; healthDeadlineMs?: number } = {},
): Promise<RemoteConfigStart> {
  const state = new ConfigState(configPaths(local).dataDir);
  let committed: CommittedState = { layers: {} };
  let pending: PendingState | undefined;
  try {
    committed = state.committed();
    pending = state.pending();
  } catch (err) {
    log.error({ err: describeError(err) }, 'remote configuration state unreadable; starting on the local file alone');
  }
  let localLayer: LocalLayer = { data: local.data ?? {}, origin: local.origin, baseDir: local.baseDir, path: options.localPath };
  let interrupted: Omit<ConfigReport, 'effective'> | undefined;
  if (pending) {
    if (stableJson(pending.state) !== stableJson(committed)) {
      const report: Omit<ConfigReport, 'effective'> = {
        layer: pending.layer,
        outcome: 'rolled_back',
        reason: 'interrupted',
        message: `the agent stopped between applying this configuration (started ${pending.started}) and committing it; back on the last known good`,
        at: new Date().toISOString(),
      };
      if (pending.version !== undefined) report.version = pending.version;
      interrupted = report;
      // A local reload that did not finish: the file holds the change, the snapshot the last good content.
      if (pending.layer === 'local' && committed.local) localLayer = { ...localLayer, data: committed.local.config };
    }
    state.clearPending();
  }
  let effective: LoadedConfig = local;
  // With no remote layer committed and the file as loaded, the effective configuration is the file's, which
  // the caller has validated: merging and validating it twice more cost ≈3 ms of every start.
  const onlyTheFile = Object.keys(committed.layers).length === 0 && localLayer.data === local.data;
  try {
    if (!onlyTheFile) effective = buildEffective(localLayer, committed, local.drivers).loaded;
  } catch (err) {
    // Fail closed on what is remote: the local file alone still runs.
    log.error({ err: describeError(err) }, 'committed remote configuration does not validate with the local file; starting on the local file alone');
    localLayer = { data: local.data ?? {}, origin: local.origin, baseDir: local.baseDir, path: options.localPath };
  }
  const agent = await startAgent(effective, log, { receiverOutput: options.receiverOutput, telemetry: options.telemetry });
  const pipeline = new ConfigPipeline({ agent, state, local: localLayer, committed, log, healthDeadlineMs: options.healthDeadlineMs });
  const report = interrupted ? pipeline.publish({ ...interrupted, effective: pipeline.effectiveVersion() }) : undefined;
  return { agent, pipeline, interrupted: report };
}
