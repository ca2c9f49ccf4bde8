import { closeSync, openSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { delay, AgentError, COMMIT_NOW, type AgentRecord, type ServiceSource, type SourceContext } from '../../../agent/sdk/index.ts';
import type { Options } from './options.ts';
import { type RecordMaker, recordMaker } from './shapes.ts';

/**
 * Makes the records numbered `after + 1` … `after + size` and emits them. Not inlined in `run`: an async
 * function keeps what its frame holds alive across its awaits, so records made there would stay reachable
 * while it waits for an emit's commit, long enough for the young generation to promote them to old space,
 * where only a full collection frees them (the queue holds emits as bytes for that reason: queue.ts, `write`).
 */
function emitRecords(ctx: SourceContext, make: RecordMaker, after: number, size: number, commitNow: boolean): Promise<void> {
  const records: AgentRecord[] = new Array(size);
  const now = Date.now();
  for (let i = 0; i < size; i++) records[i] = make(after + i + 1, now, size - 1 - i);
  return ctx.emit(records, after + size, commitNow ? COMMIT_NOW : undefined);
}

/**
 * A generator of typical sensor records for load tests. Its cursor is the number of the last record
 * committed, so after a crash it continues with the next number: the sequence n = 1, 2, 3… arrives at the
 * centre with no gap and no repeat.
 */
export class SyntheticSource implements ServiceSource {
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();

  private readonly config: Options;
  private readonly commitLogPath: string | undefined;
  private commitLog: number | undefined;

  constructor(config: Options, baseDir: string) {
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
      const emitted = emitRecords(ctx, make, n, size, pending.size + 1 >= max_pending);
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
