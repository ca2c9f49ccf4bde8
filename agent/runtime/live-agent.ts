/**
 * The running agent, and how it takes a new configuration live: it compares what runs (each part keyed by
 * the settings it was built from, agent/runtime/config-diff.ts) with what is asked, and restarts only what
 * differs. A source restarts alone, after what it emitted is committed, so it resumes from its cursor; the
 * sender and sink restart together, and batches that were in flight are handed out again by the queue; a
 * change under everything (keys, queue, broker…) stops all parts cleanly and starts them again in process.
 */
import { AgentError, describeError } from '../errors.ts';
import type { Logger, LogLevel } from '../log.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { Queue } from '../queue/queue.ts';
import type { RecordOutput } from '../receiver/output.ts';
import type { RunningReceiver } from '../receiver/start.ts';
import type { Telemetry } from '../telemetry/registry.ts';
import type { Governor } from '../governor/governor.ts';
import type { Sender } from './sender.ts';
import type { SourceRunner } from './source-runner.ts';
import type { AgentStatus, ApplyResult, RunningAgent } from './running-agent.ts';
import { configChanges } from './config-diff.ts';
import { delay } from '../util/backoff.ts';
import { type HealthResult, healthGate } from './health.ts';
import { type Core, type Delivery, openCore, type RunningSource, startDelivery, startSource } from './parts.ts';

/** How long a reconfigured sender waits for its writes in flight before the sink closes; what is left goes again. */
const DELIVERY_RESTART_GRACE_MS = 1_000;
/** How long a stopped source's last emits may take to commit before its restart goes on. */
const SOURCE_SETTLE_MS = 10_000;

export class LiveAgent implements RunningAgent {
  readonly telemetry: Telemetry;
  private readonly log: Logger;
  private readonly receiverOutput: RecordOutput | undefined;
  private current: LoadedConfig | undefined;
  private core: Core | undefined;
  /** Kept after a stop, so status() still answers (the run command logs it on the way out). */
  private lastCore: Core | undefined;
  private delivery: Delivery | undefined;
  private lastDelivery: Delivery | undefined;
  private readonly sources = new Map<string, RunningSource>();
  /** Applies and the stop run one at a time, in the order they were asked. */
  private turn: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(log: Logger, telemetry: Telemetry, receiverOutput?: RecordOutput) {
    this.log = log;
    this.telemetry = telemetry;
    this.receiverOutput = receiverOutput;
  }

  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.turn.then(fn, fn);
    this.turn = next.catch(() => {});
    return next;
  }

  /** Starts every part; on failure, stops what started and rejects with the cause. */
  async start(loaded: LoadedConfig): Promise<void> {
    this.current = loaded;
    try {
      await this.startAll(loaded);
    } catch (err) {
      await this.stopAll();
      throw err;
    }
  }

  get loaded(): LoadedConfig {
    return this.current!;
  }

  get queue(): Queue {
    return (this.core ?? this.lastCore)!.queue;
  }

  get sender(): Sender {
    return (this.delivery ?? this.lastDelivery)!.sender;
  }

  get governor(): Governor | undefined {
    return this.delivery?.governor;
  }

  get receiver(): RunningReceiver | undefined {
    return (this.core ?? this.lastCore)?.receiver;
  }

  private async startAll(loaded: LoadedConfig): Promise<void> {
    const core = await openCore(loaded, this.log, this.telemetry, this.receiverOutput);
    this.core = core;
    this.lastCore = core;
    // Sources first: they need only the queue, and collecting must not wait for the uplink. A sink's connect
    // waits for its first attempt, which against a broker that does not answer lasts its connect_timeout (for
    // Kafka, once per retry): tens of seconds in which a serial line or a pushing device would not be read.
    for (const source of loaded.config.sources) this.sources.set(source.name, await startSource(core, loaded, source, this.log, this.telemetry));
    this.delivery = await startDelivery(core, loaded, this.log, this.telemetry);
    this.lastDelivery = this.delivery;
    this.log.info({ device: core.device, sources: this.sources.size, sink: loaded.config.sink!.type, queue: core.queuePath }, 'agent running');
  }

  private async stopSource(name: string): Promise<void> {
    const running = this.sources.get(name);
    if (!running) return;
    this.sources.delete(name);
    await running.runner.stop();
    // Bounded: an emit blocked on a full queue (full_policy: block) may never commit; the queue's close wakes it.
    const timer = new AbortController();
    const settled = await Promise.race([running.runner.settled().then(() => true), delay(SOURCE_SETTLE_MS, timer.signal).then(() => false)]);
    timer.abort();
    if (!settled) this.log.warn({ source: name, waitedMs: SOURCE_SETTLE_MS }, 'records the source emitted are still not committed; going on');
  }

  /** Sources first (their last records committed), then delivery, then the core (queue closed cleanly). */
  private async stopAll(deliveryGraceMs?: number): Promise<void> {
    const names = [...this.sources.keys()];
    await Promise.all(
      names.map((n) => this.stopSource(n).catch((err) => this.log.warn({ err: describeError(err), source: n }, 'source did not stop cleanly'))),
    );
    try {
      await this.core?.queue.flush();
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'queue flush at stop failed');
    }
    await this.delivery?.stop(deliveryGraceMs);
    this.delivery = undefined;
    await this.core?.close();
    this.core = undefined;
  }

  apply(next: LoadedConfig): Promise<ApplyResult> {
    return this.inTurn(() => this.applyNow(next));
  }

  private async applyNow(next: LoadedConfig): Promise<ApplyResult> {
    if (this.stopped) throw new AgentError('APPLY_FAILED', 'the agent is stopped');
    const previous = this.current!;
    const changes = configChanges(
      {
        whole: this.core?.key,
        delivery: this.delivery?.key,
        sources: new Map([...this.sources].map(([name, s]) => [name, s.key])),
      },
      next.config,
    );
    this.current = next;
    if (previous.config.log.level !== next.config.log.level) {
      // Child loggers read the level through their parent: one assignment reaches every component.
      this.log.level = next.config.log.level as LogLevel;
      this.log.info({ level: next.config.log.level }, 'log level changed');
    }
    if (previous.config.log.format !== next.config.log.format) this.log.warn('log.format changes take effect at the next start');
    const restarted = { sources: [] as string[], sink: false, whole: false };
    try {
      if (changes.whole) {
        restarted.whole = true;
        restarted.sink = true;
        restarted.sources = next.config.sources.map((s) => s.name);
        this.log.info('new configuration changes the core (device, keys, queue, broker or receiver): restarting everything');
        await this.stopAll(DELIVERY_RESTART_GRACE_MS);
        await this.startAll(next);
        return { restarted };
      }
      const core = this.core!;
      for (const name of changes.stopSources) await this.stopSource(name);
      if (changes.delivery) {
        restarted.sink = true;
        await this.delivery?.stop(DELIVERY_RESTART_GRACE_MS);
        this.delivery = undefined;
        this.delivery = await startDelivery(core, next, this.log, this.telemetry);
        this.lastDelivery = this.delivery;
        this.log.info({ sink: next.config.sink!.type }, 'sink and sender restarted on the new configuration');
      }
      for (const source of changes.startSources) {
        restarted.sources.push(source.name);
        this.sources.set(source.name, await startSource(core, next, source, this.log, this.telemetry));
      }
      if (changes.stopSources.length + changes.startSources.length > 0) {
        this.log.info({ stopped: changes.stopSources, started: changes.startSources.map((s) => s.name) }, 'sources restarted on the new configuration');
      }
      return { restarted };
    } catch (err) {
      throw new AgentError('APPLY_FAILED', `cannot run the new configuration: ${describeError(err)}`, { cause: err, details: { restarted } });
    }
  }

  health(sinceMs: number, deadlineMs: number, label = 'health'): Promise<HealthResult> {
    return healthGate(
      {
        sources: () =>
          this.core
            ? this.current!.config.sources.map((s) => ({ name: s.name, state: this.sources.get(s.name)?.runner.state ?? 'not started' }))
            : [{ name: '(all)', state: 'not started' }],
        sinkConnected: () => this.delivery?.sink.connected ?? false,
        lastDeliveredAt: () => this.delivery?.sender.lastDeliveredAt ?? 0,
        queue: () => this.core?.queue,
      },
      sinceMs,
      deadlineMs,
      label,
    );
  }

  status(): AgentStatus {
    const core = (this.core ?? this.lastCore)!;
    const delivery = (this.delivery ?? this.lastDelivery)!;
    return {
      queue: core.queue.stats(),
      recovery: core.queue.recovery,
      sender: delivery.sender.stats(),
      sink: { connected: this.delivery?.sink.connected ?? false },
      ...(delivery.governor ? { governor: delivery.governor.status() } : {}),
      sources: Object.fromEntries([...this.sources].map(([name, s]) => [name, { state: s.runner.state, counters: s.runner.counters.snapshot() }])),
    };
  }

  source(name: string): SourceRunner | undefined {
    return this.sources.get(name)?.runner;
  }

  stop(): Promise<void> {
    return this.inTurn(async () => {
      if (this.stopped) return;
      this.stopped = true;
      await this.stopAll();
    });
  }
}
