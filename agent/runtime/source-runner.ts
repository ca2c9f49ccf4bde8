import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Queue, WrittenEmit } from '../queue/queue.ts';
import { asRecords, isRecordRows, recordCount, type AgentRecord, type Cursor, type EmittedRecords, type RecordRows } from '../domain/record.ts';
import type { DriverEnv } from '../contracts/driver.ts';
import type { EmitOptions, PolledSource, ServiceSource, Source, SourceContext, SourceDriver } from '../contracts/source.ts';
import type { SourceConfig } from '../config/schema.ts';
import { backoffDelay, delay, type BackoffPolicy } from '../util/backoff.ts';
import type { ComponentCounters } from '../telemetry/counters.ts';
import type { ProblemReporter } from '../telemetry/problems.ts';
import type { RecordTap } from '../telemetry/record-tap.ts';
import { driverEnv } from '../hosting/driver-env.ts';
import { type Counter, Telemetry } from '../telemetry/registry.ts';
import { EmitBudget, emitBudgetLimits, writtenBytes, type SourceAccount } from './emit-budget.ts';

function isService(source: Source): source is ServiceSource {
  return typeof (source as ServiceSource).start === 'function';
}

/**
 * Supervises one source: creates it, starts it (with the configured startup-error behaviour), polls it or
 * lets it push, and restarts a failed service from its last committed cursor with backoff. One source's
 * trouble never stops the others.
 */
export class SourceRunner {
  readonly counters: ComponentCounters;
  private readonly problems: ProblemReporter;
  /** Replaced at resume: a pause aborts the supervision loop as a stop does. */
  private abort = new AbortController();
  private running: Promise<void> | undefined;
  private current: Source | undefined;
  private restarts = 0;
  state: 'starting' | 'running' | 'retrying' | 'failed' | 'off' | 'paused' | 'stopped' = 'starting';
  private readonly driver: SourceDriver;
  private readonly config: SourceConfig & { stream: string };
  private readonly queue: Queue;
  private readonly env: DriverEnv & { counters: ComponentCounters };
  private readonly retry: BackoffPolicy;
  private readonly log: Logger;
  private readonly account: SourceAccount;
  private readonly tap: RecordTap;
  private readonly recordsIn: Counter;

  /**
   * `telemetry` is the agent's registry; a runner on its own (a test) gets one of its own. `budget` is the
   * agent's emit budget, shared by all its sources; a runner on its own gets one sized for one source.
   */
  constructor(
    driver: SourceDriver,
    config: SourceConfig & { stream: string },
    queue: Queue,
    env: Pick<DriverEnv, 'log' | 'baseDir'>,
    retry: BackoffPolicy,
    log: Logger,
    telemetry: Telemetry = new Telemetry(),
    budget?: EmitBudget,
  ) {
    this.driver = driver;
    this.config = config;
    this.queue = queue;
    this.env = driverEnv(env, { kind: 'source', name: config.name }, telemetry);
    this.counters = this.env.counters;
    this.problems = this.env.problems;
    this.retry = retry;
    this.log = log;
    this.tap = telemetry.tap;
    this.recordsIn = telemetry.counter('edge_records_in_total', 'Records sources emitted, by stream (handed to the queue; drops at commit are counted there)', [
      'stream',
    ]);
    this.account = (budget ?? new EmitBudget(emitBudgetLimits(1), () => void queue.flush())).account();
  }

  get name(): string {
    return this.config.name;
  }

  /** Resolves once the first start attempt settled; rejects only with on_start_error=fail. */
  async start(): Promise<void> {
    let firstAttempt!: (err?: unknown) => void;
    const settled = new Promise<void>((resolve, reject) => (firstAttempt = (err) => (err === undefined ? resolve() : reject(err))));
    this.running = this.supervise(firstAttempt);
    return settled;
  }

  private context(failed: (err: unknown) => void): SourceContext {
    const { name, stream } = this.config;
    return {
      name,
      log: this.log,
      cursor: this.queue.cursor(name),
      signal: this.abort.signal,
      counters: this.counters,
      problems: this.problems,
      emit: (records: AgentRecord[], cursor?: Cursor, options?: EmitOptions) => this.emit(stream, records, cursor, options),
      // The tap (rarely on) shows records as objects: rows are then made into records first, and written so.
      emitRows: (rows: RecordRows, cursor?: Cursor, options?: EmitOptions) =>
        this.emit(stream, this.tap.listening > 0 ? asRecords(rows) : rows, cursor, options),
      room: () => this.account.room(),
      queueRefuses: (to?: string) => this.queue.refusesNew(to ?? stream),
      maxEmitBytes: this.account.perEmitBytes,
      fail: failed,
    };
  }

  /**
   * Writes an emit's records as CBOR at once, so only the bytes wait for the budget and the commit. Not
   * async: an async function would keep its `records` argument alive until it returns.
   */
  private emit(stream: string, records: EmittedRecords, cursor: Cursor | undefined, options: EmitOptions | undefined): Promise<void> {
    const count = recordCount(records);
    this.counters.add('records', count);
    this.recordsIn.inc({ stream }, count);
    const to = options?.stream ?? stream;
    let written: WrittenEmit;
    try {
      written = this.queue.write(to, records);
    } catch (err) {
      return Promise.reject(err);
    }
    // The tap (rarely on) shows committed emits: only then are the records kept until the commit.
    const tapped = this.tap.listening > 0 && !isRecordRows(records) ? records : undefined;
    const source = this.config.name;
    return this.admit(to, written, cursor === undefined ? undefined : { source, value: cursor }, options?.commitWithinMs, tapped);
  }

  /**
   * Charges the emit's written bytes to the budget (what it holds in memory until its commit), hands it to
   * the queue once they are admitted, and returns them once it is committed.
   */
  private async admit(
    to: string,
    written: WrittenEmit,
    cursor: { source: string; value: Cursor } | undefined,
    commitWithinMs: number | undefined,
    tapped: AgentRecord[] | undefined,
  ): Promise<void> {
    const bytes = writtenBytes(written);
    await this.account.charge(bytes);
    try {
      // A source being stopped commits at once: its last emits must not wait out queue.commit_interval.
      await this.queue.enqueueWritten(to, written, cursor, this.abort.signal.aborted ? 0 : commitWithinMs);
      if (tapped) this.tap.publish(to, tapped);
    } finally {
      this.account.release(bytes);
    }
  }

  private async supervise(firstAttempt: (err?: unknown) => void): Promise<void> {
    const signal = this.abort.signal;
    let first = true;
    while (!signal.aborted) {
      let failure: ((err: unknown) => void) | undefined;
      const failed = new Promise<unknown>((resolve) => (failure = resolve));
      try {
        const source = await this.driver.create(this.config as never, this.env);
        this.current = source;
        const ctx = this.context((err) => failure?.(err));
        if (isService(source)) await source.start(ctx);
        this.state = 'running';
        this.log.info({ restarts: this.restarts }, 'source started');
        if (first) firstAttempt();
        first = false;
        const err = isService(source) ? await Promise.race([failed, this.stopped()]) : await this.poll(source, ctx, failed);
        if (signal.aborted) break;
        this.counters.add('failures');
        this.log.error({ err: describeError(err) }, 'source failed; restarting');
        await this.close(source);
      } catch (err) {
        this.counters.add('start_errors');
        const behaviour = this.config.on_start_error;
        if (behaviour === 'fail') {
          this.state = 'failed';
          if (first) firstAttempt(err);
          this.log.error({ err: describeError(err) }, 'source cannot start');
          return;
        }
        if (behaviour === 'ignore') {
          this.state = 'off';
          this.log.error({ err: describeError(err) }, 'source cannot start; left off (on_start_error: ignore)');
          if (first) firstAttempt();
          return;
        }
        this.log.warn({ err: describeError(err) }, 'source cannot start; will retry');
        if (first) firstAttempt();
        first = false;
      }
      this.state = 'retrying';
      await delay(backoffDelay(this.retry, this.restarts++), signal);
    }
  }

  /**
   * Aborts the source and commits what it emitted at once: a polled source finishes its gather only when its
   * emits are committed, and with a long queue.commit_interval (minutes, to spare the flash) waiting for the
   * timer would hold a stop, a pause or a config change that long.
   */
  private stopping(): void {
    this.abort.abort();
    void this.queue.flush();
  }

  private stopped(): Promise<undefined> {
    return new Promise((resolve) => this.abort.signal.addEventListener('abort', () => resolve(undefined), { once: true }));
  }

  /** Calls gather on the interval until stopped or failed; a failing gather is counted, not fatal. */
  private async poll(source: PolledSource, ctx: SourceContext, failed: Promise<unknown>): Promise<unknown> {
    let failure: unknown;
    let hasFailed = false;
    void failed.then((err) => {
      hasFailed = true;
      failure = err;
    });
    while (!this.abort.signal.aborted && !hasFailed) {
      const started = Date.now();
      try {
        await source.gather(ctx);
        this.counters.add('polls');
      } catch (err) {
        this.counters.add('poll_errors');
        this.log.warn({ err: describeError(err) }, 'poll failed');
      }
      await delay(Math.max(0, this.config.interval - (Date.now() - started)), this.abort.signal);
    }
    return failure;
  }

  private async close(source: Source): Promise<void> {
    try {
      if (isService(source)) await source.stop();
      else await source.close?.();
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'source did not stop cleanly');
    }
  }

  /**
   * Stops the source as `stop` does but may start again (`resume`); its cursor stays committed in the queue, so
   * it resumes where it left off. False when it is stopped for good or already paused.
   */
  async pause(): Promise<boolean> {
    if (this.state === 'paused' || this.state === 'stopped') return false;
    this.stopping();
    await this.running;
    if (this.current) await this.close(this.current);
    this.current = undefined;
    this.state = 'paused';
    return true;
  }

  /** Starts a paused source again (false when it is not paused). */
  async resume(): Promise<boolean> {
    if (this.state !== 'paused') return false;
    this.abort = new AbortController();
    this.state = 'starting';
    await this.start();
    return true;
  }

  /**
   * Resolves once every record this source emitted is committed (or refused), so its cursor in the queue is
   * final: a source restarted on a new config must start from there, or it would emit some records twice.
   */
  settled(): Promise<void> {
    return this.account.idle();
  }

  async stop(): Promise<void> {
    this.stopping();
    await this.running;
    if (this.current) await this.close(this.current);
    this.state = 'stopped';
  }
}
