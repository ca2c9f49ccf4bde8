import { type FSWatcher, watch } from 'node:fs';
import { AgentError, type AgentRecord, type DriverEnv, type ServiceSource, type SourceContext, describeError } from '../../../agent/sdk/index.ts';
import { Emitter } from './emitter.ts';
import { FileSet } from './files.ts';
import type { FileOptions } from './options.ts';
import type { Line, TrackedFile } from './tracked.ts';

/** What a record holds in memory besides its line's text: its object, ts and path fields. */
const RECORD_OVERHEAD = 128;

/** Bytes read from one live file in one pass before the others get their turn. */
const PASS_CHUNKS = 4;

/**
 * Tails files. One loop: match the patterns (every poll_interval, sooner when fs.watch hints at a change),
 * check each followed file for truncation, read what it gained in bounded chunks, cut it into lines and
 * records, and hand them to the queue with the cursor of every file. fs.watch is only a hint: it misses
 * events on some file systems and across renames, so polling alone must (and does) suffice.
 */
export class FileSource implements ServiceSource {
  private readonly options: FileOptions & { name: string };
  private readonly env: DriverEnv;
  private ctx!: SourceContext;
  private set!: FileSet;
  private emitter!: Emitter;
  private buffer!: Buffer;
  private readonly watchers: FSWatcher[] = [];
  private running: Promise<void> | undefined;
  private stopping = false;
  private wakeUp: (() => void) | undefined;
  private rescan = false;

  constructor(options: FileOptions & { name: string }, env: DriverEnv) {
    this.options = options;
    this.env = env;
  }

  async start(ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    const o = this.options;
    this.buffer = Buffer.alloc(o.read_bytes);
    this.set = new FileSet(o, this.env.baseDir, ctx);
    this.emitter = new Emitter(ctx, { batchRecords: o.batch_records, maxPending: o.max_pending, maxPendingBytes: o.max_pending_bytes }, (err) =>
      this.fail(err),
    );
    try {
      await this.set.restore(ctx.cursor);
      await this.set.scan(ctx.cursor === undefined);
    } catch (cause) {
      await this.set.closeAll();
      throw new AgentError('SOURCE_FAILED', `file source ${o.name}: cannot open its files: ${describeError(cause)}`, { cause, retryable: true });
    }
    // The starting positions are committed at once: a restart before the first line must not apply
    // start_at again (with `end` it would skip what was written meanwhile).
    if (ctx.cursor === undefined) this.flush();
    for (const dir of this.set.directories()) this.watchDirectory(dir);
    this.running = this.run().catch((err) => this.fail(err));
  }

  private watchDirectory(dir: string): void {
    try {
      const watcher = watch(dir, { persistent: false }, (event) => {
        if (event === 'rename') this.rescan = true;
        this.wake();
      });
      watcher.on('error', () => watcher.close());
      this.watchers.push(watcher);
    } catch {
      // A directory that does not exist yet, or no inotify: polling finds the files anyway.
    }
  }

  private wake(): void {
    const wake = this.wakeUp;
    this.wakeUp = undefined;
    wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake(), Math.max(0, ms));
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private get halted(): boolean {
    return this.stopping || this.emitter.failed || this.ctx.signal.aborted;
  }

  private async run(): Promise<void> {
    let lastScan = Date.now();
    while (!this.halted) {
      if (this.rescan || Date.now() - lastScan >= this.options.poll_interval) {
        this.rescan = false;
        lastScan = Date.now();
        await this.set.scan(false);
      }
      const progressed = await this.pass();
      if (this.halted) break;
      if (this.emitter.gathered > 0 || this.set.changed) this.flush();
      if (!progressed) await this.sleep(this.options.poll_interval - (Date.now() - lastScan));
    }
  }

  /** Reads every followed file once (live files up to a few chunks, rotated ones to their end). */
  private async pass(): Promise<boolean> {
    let progressed = false;
    for (const file of this.set.inReadingOrder()) {
      if (this.halted) break;
      let check: { truncated: boolean };
      try {
        check = await file.check();
      } catch (err) {
        this.ctx.problems.report('read_errors', 'cannot read a followed file', { path: file.path, err: describeError(err) });
        continue;
      }
      if (check.truncated) {
        await this.set.truncated(file);
        progressed = true;
        if (file.predecessor) continue;
      }
      let budget = file.rotatedAt === undefined ? PASS_CHUNKS * this.options.read_bytes : Number.POSITIVE_INFINITY;
      let atEnd = false;
      while (budget > 0 && !this.halted) {
        await this.emitter.room();
        const n = await file.read(
          this.buffer,
          this.options.max_line_bytes,
          (line) => this.onLine(file, line),
          (start, end) => this.tooLong(file, start, end),
        );
        if (n === 0) {
          atEnd = true;
          break;
        }
        this.ctx.counters.add('bytes', n);
        progressed = true;
        budget -= n;
      }
      await this.set.forgetIfDone(file, atEnd, file.hasUnfinishedLine);
    }
    return progressed;
  }

  private onLine(file: TrackedFile, line: Line): void {
    const result = file.decoder.decode(line.text, line.start);
    if (!result.ok) {
      this.ctx.problems.report(result.reason, 'a line could not be decoded; skipped', { path: file.path, offset: line.start, detail: result.detail });
      return;
    }
    const record = result.fields;
    if (record === undefined) return;
    if (!(typeof record.ts === 'number' && Number.isFinite(record.ts))) record.ts = Date.now();
    if (this.options.path_field) record[this.options.path_field] = file.path;
    if (this.options.offset_field) record[this.options.offset_field] = line.start;
    this.ctx.counters.add('lines');
    if (this.emitter.add(record as AgentRecord, RECORD_OVERHEAD + line.text.length)) this.flush();
  }

  private tooLong(file: TrackedFile, start: number, end: number): void {
    this.ctx.problems.report('line_too_long', 'a line longer than max_line_bytes was skipped', {
      path: file.path,
      offset: start,
      bytes: end - start,
      max_line_bytes: this.options.max_line_bytes,
    });
  }

  /** Hands what was gathered to the queue, with the position of every file (lines handled so far). */
  private flush(): void {
    this.set.changed = false;
    this.emitter.flush(this.set.cursor());
  }

  private fail(cause: unknown): void {
    if (this.stopping) return;
    this.stopping = true;
    this.wake();
    this.ctx.fail(
      new AgentError('SOURCE_FAILED', `file source ${this.options.name}: lines not committed; read again from the last cursor`, { cause, retryable: true }),
    );
  }

  async stop(): Promise<void> {
    const failed = this.stopping;
    this.stopping = true;
    this.wake();
    for (const w of this.watchers) w.close();
    await this.running;
    // What was read is committed before leaving, so a clean stop repeats nothing.
    if (!failed && !this.emitter.failed && (this.emitter.gathered > 0 || this.set.changed)) this.flush();
    await this.emitter.drain();
    await this.set.closeAll();
  }
}
