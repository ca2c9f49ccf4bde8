import { closeSync, openSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { z, delay, AgentError, type AgentRecord, type ServiceSource, type SourceContext, defineSourceDriver } from '../../../agent/sdk/index.ts';
import { type RecordMaker, recordMaker, SHAPES } from './shapes.ts';

const options = () =>
  z.strictObject({
    rate: z.number().nonnegative().default(10).describe('Records per second; 0 means as fast as the queue takes them.'),
    count: z.number().int().nonnegative().default(0).describe('Stop after this many records in total (across restarts); 0 means never stop.'),
    batch: z.number().int().min(1).max(100_000).default(500).describe('Records handed to the queue per emit.'),
    sensors: z.number().int().min(1).optional().describe('Distinct sensor ids (default 16 for `classic`, 400 for `realistic`).'),
    shape: z
      .enum(SHAPES)
      .default('classic')
      .describe(
        '`classic`: the small {n, ts, sensor, value, unit} record (one timestamp per emit, a smooth value; compresses unrealistically well). `realistic`: a timestamp per record, noisy float readings, hundreds of sensor ids, a status; sized by record_bytes.',
      ),
    record_bytes: z
      .number()
      .int()
      .min(40)
      .max(1_000_000)
      .default(120)
      .describe('Approximate JSON size of a `realistic` record in bytes: below 100 a compact form, above ≈140 an array of float readings grows it.'),
    max_pending: z
      .number()
      .int()
      .min(1)
      .default(16)
      .describe(
        'Emits awaiting their commit at once. Keep batch × max_pending above queue.commit_every_records, or every commit waits for queue.commit_interval.',
      ),
    commit_log: z
      .string()
      .optional()
      .describe(
        "Test and diagnostic use: a file (relative to the config file; keep it off the queue's disk) to which the last record number of each emit is appended as a line, synced, once the emit is committed: what the source was told is durable, for power-loss tests to compare the queue against.",
      ),
  });

/**
 * Makes the records numbered `after + 1` … `after + size` and emits them. Not inlined in `run`: an async
 * function keeps what its frame holds alive across its awaits, so records made there would stay reachable
 * while it waits for an emit's commit, long enough for the young generation to promote them to old space,
 * where only a full collection frees them (the queue holds emits as bytes for that reason: queue.ts, `write`).
 */
function emitRecords(ctx: SourceContext, make: RecordMaker, after: number, size: number): Promise<void> {
  const records: AgentRecord[] = new Array(size);
  const now = Date.now();
  for (let i = 0; i < size; i++) records[i] = make(after + i + 1, now, size - 1 - i);
  return ctx.emit(records, after + size);
}

/**
 * A generator of typical sensor records for load tests. Its cursor is the number of the last record
 * committed, so after a crash it continues with the next number: the sequence n = 1, 2, 3… arrives at the
 * centre with no gap and no repeat.
 */
class SyntheticSource implements ServiceSource {
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();

  private readonly config: z.output<ReturnType<typeof options>>;
  private readonly commitLogPath: string | undefined;
  private commitLog: number | undefined;

  constructor(config: z.output<ReturnType<typeof options>>, baseDir: string) {
    this.config = config;
    this.commitLogPath = config.commit_log === undefined ? undefined : resolve(baseDir, config.commit_log);
  }

  async start(ctx: SourceContext): Promise<void> {
    if (this.commitLogPath !== undefined) {
      try {
        // O_SYNC: each line is on disk when its write returns, so the log never claims less than was acked.
        this.commitLog = openSync(this.commitLogPath, 'as');
      } catch (cause) {
        throw new AgentError('SOURCE_FAILED', `synthetic source ${ctx.name}: cannot open commit_log ${this.commitLogPath}`, { cause });
      }
    }
    this.running = this.run(ctx);
  }

  private async run(ctx: SourceContext): Promise<void> {
    const { rate, count, batch, max_pending, shape, record_bytes } = this.config;
    const make = recordMaker({ shape, record_bytes, sensors: this.config.sensors ?? (shape === 'classic' ? 16 : 400) });
    const signal = AbortSignal.any([ctx.signal, this.abort.signal]);
    let n = typeof ctx.cursor === 'number' ? ctx.cursor : 0;
    const startN = n;
    const startedAt = performance.now();
    const pending = new Set<Promise<void>>();
    while (!signal.aborted && (count === 0 || n < count)) {
      if (rate > 0) {
        const due = startN + Math.floor(((performance.now() - startedAt) / 1000) * rate);
        if (due <= n) {
          await delay(Math.max(1, Math.ceil((1000 * Math.min(batch, rate)) / rate / 2)), signal);
          continue;
        }
      }
      await ctx.room?.();
      if (signal.aborted) break;
      const size = Math.min(
        batch,
        count === 0 ? batch : count - n,
        rate > 0 ? Math.max(1, startN + Math.floor(((performance.now() - startedAt) / 1000) * rate) - n) : batch,
      );
      const emitted = emitRecords(ctx, make, n, size);
      n += size;
      const last = n;
      pending.add(emitted);
      emitted.then(
        () => {
          pending.delete(emitted);
          // Emits resolve in commit order, so the lines only grow.
          if (this.commitLog !== undefined) writeSync(this.commitLog, `${last}\n`);
        },
        (err) => {
          pending.delete(emitted);
          // Records after the failed ones may have been numbered already; restart from the committed cursor.
          this.abort.abort();
          ctx.fail(err);
        },
      );
      if (pending.size >= max_pending) await Promise.race(pending).catch(() => {});
    }
    await Promise.allSettled(pending);
    if (count > 0 && n >= count) ctx.log.info({ n }, 'synthetic source reached its count');
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
    if (this.commitLog !== undefined) closeSync(this.commitLog);
    this.commitLog = undefined;
  }
}

export const syntheticSource = defineSourceDriver({
  type: 'synthetic',
  summary: 'Rate-controlled generator of sensor-like records (classic or realistic shapes, sized) for load and crash tests.',
  mode: 'service',
  options,
  create: (config, env) => new SyntheticSource(config, env.baseDir),
});
