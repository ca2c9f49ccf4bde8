/**
 * The desired-config pipeline: every change of configuration, remote or local, goes the same way.
 *
 *   offer(layer, document, signer) → version floor per layer → merge (config-merge.ts) → the schema (fail
 *   closed) → pending.json → agent.apply → health gate (fleet.health_deadline) → commit, or roll back by
 *   applying the committed configuration again → a report, returned and handed to every listener.
 *
 * `offer(layer: {kind:'device'} | {kind:'group', name}, document: {version, config, raw}, signer?)`: the
 * caller (the MQTT side) has verified the envelope and its target; `raw` is the envelope's text, which tells
 * a repeat of the same version from a different document. `reloadLocal()` re-reads the local file (SIGHUP,
 * or a change of the file when `fleet.watch_local_file`). `rollback()` (the `config.rollback` command) puts
 * back the remote layers as they were before the last remote commit, through the same apply and health gate.
 * Offers, reloads and rollbacks run one at a time, in the order they came. Refusals are the trust room's
 * Refusal errors (code REMOTE_REFUSED, a `reason`), reported with outcome `refused`, never thrown out of `offer`.
 *
 * Version floor: a layer's floor is the highest version ever accepted for it (`floors` in committed.json),
 * not the committed one: after a rollback from v2 to v1 the v2 document still retained on the broker comes
 * again at every reconnect and must not be applied again. That retained copy is ignored quietly (an
 * `unchanged` report, not published); the same document offered live (pushed again, `config.apply`) is
 * refused `replayed`: the operator signs a newer version to apply it again.
 */
import { AgentError, describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { type LoadedConfig, loadConfigFile } from '../config/load.ts';
import type { DriverCatalog } from '../config/catalog.ts';
import type { RunningAgent } from '../runtime/agent.ts';
import { stableJson } from '../runtime/config-diff.ts';
import type { Counter } from '../telemetry/registry.ts';
import { buildEffective, type Effective, groupsOf, type LayerRef, type LocalLayer, layerId, localSha, orderedLayers } from './config-effective.ts';
import type { LayerId, Provenance } from './config-merge.ts';
import type { CommittedState, ConfigState, LayerRecord } from './config-state.ts';
import { isRefusal, Refusal } from '../trust/index.ts';

export { buildEffective, effectiveVersion, layerId, localSha, type Effective, type LayerRef, type LocalLayer } from './config-effective.ts';

export interface RemoteConfigDocument {
  version: number;
  /** A partial config, the same shape as the YAML file. */
  config: unknown;
  /** The envelope as received. */
  raw: string;
}

export interface ConfigReport {
  layer: string;
  version?: number;
  outcome: 'committed' | 'rolled_back' | 'refused' | 'unchanged';
  /** A refusal reason (agent/trust/refusal.ts), `health:sources|sink|canary|apply`, or `interrupted`. */
  reason?: string;
  message?: string;
  at: string;
  /** The version string of the configuration running after this: `<local sha8>+g:<group>=<v>+d=<v>`. */
  effective: string;
}

export interface PipelineOptions {
  agent: RunningAgent;
  state: ConfigState;
  local: LocalLayer;
  committed: CommittedState;
  log: Logger;
  /** Overrides fleet.health_deadline (tests). */
  healthDeadlineMs?: number;
  /** The clock reports are stamped with. */
  now?: () => Date;
}

export class ConfigPipeline {
  private readonly agent: RunningAgent;
  private readonly state: ConfigState;
  private readonly log: Logger;
  private readonly drivers: DriverCatalog;
  private readonly healthDeadlineMs: number | undefined;
  private readonly now: () => Date;
  private local: LocalLayer;
  private committedState: CommittedState;
  private effective: Effective | undefined;
  private readonly listeners = new Set<(report: ConfigReport) => void>();
  private turn: Promise<unknown> = Promise.resolve();
  private readonly refused: Counter;
  /** The last report made, for a status or a late listener. */
  lastReport: ConfigReport | undefined;

  constructor(opts: PipelineOptions) {
    this.agent = opts.agent;
    this.state = opts.state;
    this.log = opts.log.child({ component: 'config' });
    this.drivers = opts.agent.loaded.drivers;
    this.healthDeadlineMs = opts.healthDeadlineMs;
    this.now = opts.now ?? (() => new Date());
    this.local = opts.local;
    this.committedState = opts.committed;
    this.refused = opts.agent.telemetry.counter('edge_remote_refused_total', 'Remote documents and commands refused, by kind and reason', ['kind', 'reason']);
    try {
      // The agent runs on a validated configuration: when it is the local file alone, it is reused as is.
      this.effective = buildEffective(this.local, this.committedState, this.drivers, opts.agent.loaded);
    } catch {
      // The agent runs on the local file alone (config-start.ts): nothing remote is in effect.
      this.effective = undefined;
    }
  }

  /** Every report, as it is made. Returns the function that stops listening. */
  onReport(listener: (report: ConfigReport) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The version string of the configuration in effect. */
  effectiveVersion(): string {
    return this.effective?.version ?? localSha(this.local.data);
  }

  /** For each top-level key and source name, the layer it comes from. */
  provenance(): Provenance {
    return this.effective?.provenance ?? { keys: {}, sources: {} };
  }

  /** The layers in effect, for the status: `{source: 'local'|'group:<g>'|'device', version?, sha?}`. */
  layers(): { source: string; version?: number; sha?: string }[] {
    const groups = groupsOf(this.local, this.drivers);
    return orderedLayers(this.local, this.committedState, groups).map((l) =>
      l.id === 'local' ? { source: 'local', sha: localSha(this.local.data) } : { source: l.id, version: l.version },
    );
  }

  committed(): CommittedState {
    return this.committedState;
  }

  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.turn.then(fn, fn);
    this.turn = next.catch(() => {});
    return next;
  }

  /** Records and hands out a report. */
  publish(report: ConfigReport): ConfigReport {
    this.lastReport = report;
    const level = report.outcome === 'committed' || report.outcome === 'unchanged' ? 'info' : 'warn';
    this.log[level]({ report }, `configuration ${report.layer}${report.version === undefined ? '' : ` v${report.version}`}: ${report.outcome}`);
    for (const listener of this.listeners) {
      try {
        listener(report);
      } catch (err) {
        this.log.warn({ err: describeError(err) }, 'a configuration report listener failed');
      }
    }
    return report;
  }

  private report(layer: string, version: number | undefined, outcome: ConfigReport['outcome'], reason?: string, message?: string): ConfigReport {
    const report: ConfigReport = { layer, outcome, at: this.now().toISOString(), effective: this.effectiveVersion() };
    if (version !== undefined) report.version = version;
    if (reason !== undefined) report.reason = reason;
    if (message !== undefined) report.message = message;
    return this.publish(report);
  }

  private refusal(layer: string, version: number | undefined, err: unknown): ConfigReport {
    if (!isRefusal(err)) throw err;
    const { reason } = err;
    this.refused.inc({ kind: 'config', reason });
    // The reason is a field of its own in the report: the message need not start with it.
    return this.report(layer, version, 'refused', reason, err.message.startsWith(`${reason}: `) ? err.message.slice(reason.length + 2) : err.message);
  }

  /**
   * A verified remote document for one layer, through the whole path. Never rejects on a refusal or a rollback.
   * `redelivered`: the broker's retained copy handed over again at subscribe (every reconnect).
   */
  offer(
    layer: LayerRef,
    document: RemoteConfigDocument,
    signer?: { keyId: string; name: string },
    options: { redelivered?: boolean } = {},
  ): Promise<ConfigReport> {
    return this.inTurn(async () => {
      const id = layerId(layer);
      const version = document.version;
      try {
        if (!Number.isSafeInteger(version) || version < 1) throw new Refusal('malformed', `${id}: version must be an integer ≥ 1`);
        if (layer.kind === 'group' && !groupsOf(this.local, this.drivers).includes(layer.name)) {
          throw new Refusal('wrong_target', `group ${layer.name} is not in this device's fleet.groups`);
        }
        const current = this.committedState.layers[id];
        if (current && version < current.version) {
          throw new Refusal('older_version', `${id} v${version} is older than the committed v${current.version}`);
        }
        if (current && version === current.version) {
          if (current.raw === document.raw) return this.report(id, version, 'unchanged', undefined, `${id} v${version} is already committed`);
          throw new Refusal('replayed', `${id} v${version} is committed already with a different document`);
        }
        const floor = this.committedState.floors?.[id];
        if (floor && version <= floor.version) {
          const how = floor.rolled_back ? `rolled back (${floor.rolled_back})` : 'rolled back on request';
          if (version === floor.version && floor.raw === document.raw) {
            const message = `${id} v${version} was ${how}; sign a version above v${floor.version} to apply it again`;
            // The retained copy at a reconnect: the report of the rollback stays the last word.
            if (options.redelivered) return this.quietReport(id, version, 'unchanged', message);
            throw new Refusal('replayed', message);
          }
          throw new Refusal(
            version === floor.version ? 'replayed' : 'older_version',
            `${id} v${version} is not above v${floor.version}, the highest version accepted (then ${how})`,
          );
        }
        const record: LayerRecord = { version, raw: document.raw, config: document.config, at: this.now().toISOString() };
        if (signer) record.signer = signer;
        const next: CommittedState = {
          ...this.committedState,
          layers: { ...this.committedState.layers, [id]: record },
          previous: { layer: id, layers: this.committedState.layers, at: this.now().toISOString() },
          floors: { ...this.committedState.floors, [id]: { version, raw: document.raw } },
        };
        return await this.gated(id, version, this.local, next);
      } catch (err) {
        return this.refusal(id, version, err);
      }
    });
  }

  /**
   * `config.rollback`: the remote layers as they were before the last remote commit, through the same apply,
   * health gate and commit. Committed, it is reported `rolled_back` with reason `operator`; if the earlier
   * layers fail the health gate, the running ones are applied again and the report says why
   * (`rolled_back`, `health:<what>`, and a message saying the rollback did not happen). One step only.
   * Throws (an AgentError, APPLY_FAILED) when there is nothing to go back to.
   */
  rollback(): Promise<ConfigReport> {
    return this.inTurn(async () => {
      const previous = this.committedState.previous;
      if (!previous) throw new AgentError('APPLY_FAILED', 'nothing to roll back to: no remote configuration was committed over an earlier one');
      const id = previous.layer as LayerId;
      const from = this.committedState.layers[id]?.version;
      const to = previous.layers[id]?.version;
      const { previous: _dropped, ...rest } = this.committedState;
      const next: CommittedState = { ...rest, layers: previous.layers };
      const describe = (v: number | undefined) => (v === undefined ? 'no document' : `v${v}`);
      const message = `${id} ${describe(from)} → ${describe(to)} on request`;
      try {
        return await this.gated(id, to, this.local, next, { outcome: 'rolled_back', reason: 'operator', message });
      } catch (err) {
        // The earlier layers no longer validate with the local file (it changed since): nothing was applied.
        return this.refusal(id, to, err);
      }
    });
  }

  /** A report returned to the caller only: not logged as an outcome, not published, not the last report. */
  private quietReport(layer: string, version: number | undefined, outcome: ConfigReport['outcome'], message: string): ConfigReport {
    return { layer, version, outcome, message, at: this.now().toISOString(), effective: this.effectiveVersion() };
  }

  /** Re-reads the local file through the same path (SIGHUP, or the file watch). */
  reloadLocal(): Promise<ConfigReport> {
    return this.inTurn(async () => {
      if (!this.local.path) return this.report('local', undefined, 'refused', 'unsupported', 'the agent runs on built-in defaults: there is no file to reload');
      let loaded: LoadedConfig;
      try {
        loaded = loadConfigFile(this.drivers, this.local.path);
      } catch (err) {
        return this.refusal('local', undefined, new Refusal('schema_invalid', describeError(err), { cause: err }));
      }
      const local: LocalLayer = { data: loaded.data, origin: loaded.origin, baseDir: loaded.baseDir, path: this.local.path };
      if (localSha(local.data) === localSha(this.local.data))
        return this.report('local', undefined, 'unchanged', undefined, 'the file holds the running configuration');
      this.snapshotRunningLocal();
      const next: CommittedState = { ...this.committedState, local: { sha: localSha(local.data), config: local.data, at: this.now().toISOString() } };
      try {
        return await this.gated('local', undefined, local, next);
      } catch (err) {
        return this.refusal('local', undefined, err);
      }
    });
  }

  /**
   * The local content running now becomes the committed snapshot, if it is not already: a reload killed
   * between apply and commit must come back on it, and the file by then holds the change.
   */
  private snapshotRunningLocal(): void {
    const sha = localSha(this.local.data);
    if (this.committedState.local?.sha === sha) return;
    const snapshot: CommittedState = { ...this.committedState, local: { sha, config: this.local.data, at: this.now().toISOString() } };
    this.state.commit(snapshot);
    this.committedState = snapshot;
  }

  /**
   * Validate, write pending, apply, gate, then commit or roll back. Throws only refusals (before anything
   * changes). `success`: how a commit is reported (a rollback on request is `rolled_back`, `operator`).
   */
  private async gated(
    id: LayerId,
    version: number | undefined,
    local: LocalLayer,
    next: CommittedState,
    success?: { outcome: ConfigReport['outcome']; reason: string; message: string },
  ): Promise<ConfigReport> {
    const candidate = buildEffective(local, next, this.drivers);
    const running = this.agent.loaded;
    if (stableJson(candidate.loaded.config) === stableJson(running.config)) {
      // Nothing runs differently: no apply, no gate; the layer is committed as it is.
      this.state.commit(next);
      this.accept(local, next, candidate);
      if (success) return this.report(id, version, success.outcome, success.reason, `${success.message}; no change to the running configuration`);
      return this.report(id, version, 'committed', undefined, 'no change to the running configuration');
    }
    this.state.writePending({ layer: id, version, started: this.now().toISOString(), state: next });
    const since = Date.now();
    const deadline = this.healthDeadlineMs ?? candidate.loaded.config.fleet.health_deadline;
    let failure: { reason: string; message: string } | undefined;
    try {
      const applied = await this.agent.apply(candidate.loaded);
      this.log.info({ layer: id, version, restarted: applied.restarted }, 'new configuration applied; checking its health');
      const health = await this.agent.health(since, deadline, candidate.version);
      if (!health.ok) failure = { reason: `health:${health.failed}`, message: health.detail };
    } catch (err) {
      failure = { reason: 'health:apply', message: describeError(err) };
    }
    if (!failure) {
      this.state.commit(next);
      this.accept(local, next, candidate);
      if (success) return this.report(id, version, success.outcome, success.reason, success.message);
      return this.report(id, version, 'committed');
    }
    await this.rollBack(running);
    this.state.clearPending();
    const failed = next.layers[id];
    if (!success && version !== undefined && failed) {
      // The failed version becomes the layer's floor: its retained copy, handed over again at every reconnect,
      // must not be applied and rolled back again each time. A retry needs a newer version.
      const floors = { ...this.committedState.floors, [id]: { version, raw: failed.raw, rolled_back: failure.reason } };
      this.committedState = { ...this.committedState, floors };
      this.state.commit(this.committedState);
    }
    if (success) {
      // A rollback on request that failed its health gate: the configuration it started from runs again.
      const from = this.committedState.layers[id]?.version;
      return this.report(
        id,
        from,
        'rolled_back',
        failure.reason,
        `the rollback on request failed its health check (${failure.message}); still on what ran before it`,
      );
    }
    return this.report(id, version, 'rolled_back', failure.reason, failure.message);
  }

  private accept(local: LocalLayer, next: CommittedState, effective: Effective): void {
    this.local = local;
    this.committedState = next;
    this.effective = effective;
  }

  /** The last good configuration again; tried twice, since a part may fail to start once (a port still closing). */
  private async rollBack(good: LoadedConfig): Promise<void> {
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        await this.agent.apply(good);
        return;
      } catch (err) {
        this.log.error({ err: describeError(err), attempt }, 'rolling back to the last good configuration failed');
      }
    }
  }
}
