import { AgentError, COMMIT_NOW, isAgentError, type PolledSource, type SourceContext } from '../../../agent/sdk/index.ts';
import type { SqlCursorConfig } from './options.ts';
import { decodePosition, encodePosition, type Position } from './position.ts';
import { emitSqlRows, lastPosition, parseJsonColumns, rowCount, type SqlRows } from './rows.ts';

/**
 * What the source saw at one instant: the highest cursor position visible, and the dialect's evidence of which
 * writers might still commit rows below it (PostgreSQL: the in-progress transaction ids of the snapshot;
 * MariaDB/MySQL: the open InnoDB write transactions; SQLite: none, it has one writer at a time).
 */
export interface Observation<Fence> {
  readonly max: Position | undefined;
  readonly fence: Fence;
  readonly at: number;
}

/** One row as the sizes query sees it: where it is and how many bytes its column values hold. */
export interface RowSize {
  readonly position: Position;
  readonly bytes: number;
}

/** A failure sorted out: the error to report, the counter it adds to, and whether the connection is gone. */
export interface Failure {
  error: AgentError;
  counter: string;
  reconnect: boolean;
}

/** The database-specific half of a SQL source. */
export interface SqlDialect<Fence> {
  /** "PostgreSQL database x at host:port": for messages; never holds a password. */
  readonly where: string;
  readonly connected: boolean;
  connect(): Promise<void>;
  observe(): Promise<Observation<Fence>>;
  /** True when no writer that was open at `earlier` can still commit (it finished, or none was open). */
  settled(earlier: Observation<Fence>, now: Observation<Fence>): boolean;
  read(after: Position | undefined, upTo: Position, limit: number): Promise<SqlRows>;
  /** The positions and sizes (bytes of their column values) of the rows `read` would return, not the rows. */
  sizes(after: Position | undefined, upTo: Position, limit: number): Promise<RowSize[]>;
  /**
   * Optional: the rows `read` would return when all of them fit (none above `maxRowBytes`, together within
   * `maxBatchBytes` or a single row), with their bytes; undefined when they do not. Sized and read in one
   * snapshot, so the rows read are the rows sized, and no JS object is made per row for its size.
   */
  readIfFits?(after: Position | undefined, upTo: Position, limit: number, maxRowBytes: number, maxBatchBytes: number): Promise<FittingRows | undefined>;
  disconnect(): Promise<void>;
  classify(err: unknown, doing: string): Failure;
  /** How many rows have a NULL cursor value (they are never read). */
  countNullCursor(): Promise<number>;
}

/** Rows read whole by `readIfFits`, and the bytes their column values hold. */
export interface FittingRows {
  readonly rows: SqlRows;
  readonly bytes: number;
}

/** Observations waiting for their writers; beyond this the newest is replaced (only delays settling, never unsafe). */
const MAX_WAITING = 64;
/** Emits of one poll awaiting their commit at once. */
const MAX_PENDING_EMITS = 4;
/** Waiting this long for open writers is worth a warning (a transaction left open holds the source back). */
const SLOW_SETTLE_MS = 60_000;
/** How often rows with a NULL cursor value are counted (a COUNT over the cursor columns' index). */
const NULL_CHECK_MS = 60_000;

/**
 * Incremental polling shared by the SQL sources. Each poll observes the highest position and reads only up to
 * the highest position whose writers have all finished ("settled"), so a row whose transaction commits late
 * (a lower id becoming visible after a higher one) is still ahead of the cursor when it appears: it is read
 * once, never skipped. Rows go out with their position as the cursor; the next poll resumes from the last
 * committed cursor, so a crash neither skips nor repeats a row.
 */
export class SqlPolledSource<Fence> implements PolledSource {
  private readonly config: SqlCursorConfig;
  private readonly dialect: SqlDialect<Fence>;
  private readonly input: string;
  private loaded = false;
  /** The last position committed with records (what a restart resumes from). */
  private committed: Position | undefined;
  private settledUpTo: Position | undefined;
  private waiting: Observation<Fence>[] = [];
  private warnedSlowSince: number | undefined;
  /** start: end found the table empty: everything that comes later is new. */
  private startedEmpty = false;
  /** When rows with a NULL cursor were last counted. */
  private nullCheckedAt = Number.NEGATIVE_INFINITY;

  constructor(config: SqlCursorConfig, dialect: SqlDialect<Fence>, input: string) {
    this.config = config;
    this.dialect = dialect;
    this.input = input;
  }

  async gather(ctx: SourceContext): Promise<void> {
    const where = `${this.dialect.where}, ${this.input}`;
    if (!this.loaded) {
      this.committed = decodePosition(ctx.cursor, this.config.timestamp_column !== undefined, where);
      this.loaded = true;
    }
    try {
      if (!this.dialect.connected) {
        await this.dialect.connect();
        ctx.counters.add('connects');
      }
      const { upTo, empty, max } = await this.settle(ctx);
      await this.reportUnreadable(ctx, max, where);
      const atEnd = this.committed === undefined && this.config.start === 'end' && !this.startedEmpty;
      if (atEnd && empty) this.startedEmpty = true;
      if (upTo === undefined) return;
      if (atEnd) {
        // Commit the starting point at once, so a restart does not start again "at the end" and skip rows.
        await ctx.emit([], encodePosition(upTo));
        this.committed = upTo;
        ctx.log.info({ position: encodePosition(upTo) }, 'SQL source starts after the rows already present');
        return;
      }
      await this.readUpTo(ctx, upTo, where);
    } catch (err) {
      if (isAgentError(err) && err.code !== 'SOURCE_FAILED') throw err; // the queue's own errors (closed, full…)
      const failure = isAgentError(err) ? { error: err, counter: 'errors', reconnect: false } : this.dialect.classify(err, 'polling');
      ctx.counters.add(failure.counter);
      if (failure.reconnect) await this.dialect.disconnect().catch(() => {});
      throw failure.error;
    }
  }

  /** Observes, and returns the highest position all of whose writers have finished (undefined: nothing yet). */
  private async settle(ctx: SourceContext): Promise<{ upTo: Position | undefined; empty: boolean; max: Position | undefined }> {
    const now = await this.dialect.observe();
    this.waiting.push(now);
    while (this.waiting.length > 0 && this.dialect.settled(this.waiting[0]!, now)) {
      const settled = this.waiting.shift()!;
      if (settled.max) this.settledUpTo = settled.max;
    }
    if (this.waiting.length > MAX_WAITING) this.waiting.splice(MAX_WAITING - 1, this.waiting.length - MAX_WAITING);
    const oldest = this.waiting[0];
    if (oldest && now.at - oldest.at > SLOW_SETTLE_MS) {
      if (this.warnedSlowSince !== oldest.at) {
        this.warnedSlowSince = oldest.at;
        ctx.counters.add('slow_settles');
        ctx.log.warn({ waiting_ms: now.at - oldest.at }, 'SQL source waits for a write transaction left open; rows after it are held back until it ends');
      }
    }
    return { upTo: this.settledUpTo, empty: now.max === undefined, max: now.max };
  }

  /**
   * Rows the cursor cannot reach are reported, never passed over in silence: rows with a NULL cursor value
   * (counted once a minute), and a table whose highest row is behind the committed cursor (emptied and
   * refilled, a file replaced, ids restarted): its rows up to the cursor are not read.
   */
  private async reportUnreadable(ctx: SourceContext, max: Position | undefined, where: string): Promise<void> {
    const now = Date.now();
    if (now - this.nullCheckedAt >= NULL_CHECK_MS) {
      this.nullCheckedAt = now;
      const rows = await this.dialect.countNullCursor();
      if (rows > 0) {
        const columns = [this.config.id_column, ...(this.config.timestamp_column === undefined ? [] : [this.config.timestamp_column])];
        ctx.problems.report(
          'null_cursor',
          'SQL source: rows with a NULL cursor value are never read (they have no place in the cursor order); give them a value',
          { where, columns: columns.join(', '), rows },
          { key: this.input },
        );
      }
    }
    if (max !== undefined && this.committed !== undefined && isBefore(max, this.committed)) {
      ctx.problems.report(
        'cursor_ahead',
        'SQL source: the highest row is behind the committed cursor (table emptied and refilled, file replaced, ids restarted?); rows up to the cursor are not read',
        { where, highest: printable(max), cursor: printable(this.committed) },
        { key: this.input },
      );
    }
  }

  /**
   * Reads in batches bounded by rows (batch_size) and bytes (max_batch_bytes): each batch first asks the
   * database for the next rows' sizes only, then fetches as many rows as fit. A row above max_row_bytes is
   * never fetched: it is reported and the cursor is committed past it, so one oversized row can neither
   * exhaust memory nor stop the source. A dialect that can read a batch whole when it fits (SQLite) does so
   * in one step; after a batch that did not fit, the rest of the poll goes row size by row size.
   */
  private async readUpTo(ctx: SourceContext, upTo: Position, where: string): Promise<void> {
    const { batch_size, max_rows_per_poll, max_row_bytes } = this.config;
    // The agent's share for one emit bounds the batch too (a row larger than that still goes, alone).
    const max_batch_bytes = Math.min(this.config.max_batch_bytes, ctx.maxEmitBytes ?? Number.POSITIVE_INFINITY);
    let after = this.committed;
    /** Rows delivered, and rows passed over (delivered or skipped): the poll's bound counts both. */
    let total = 0;
    let passed = 0;
    let bytesRead = 0;
    const pending: Promise<void>[] = [];
    /** Emits not yet committed (or failed): `pending` keeps settled ones until the loop shifts them. */
    let unsettled = 0;
    let emitError: unknown;
    let wholeBatches = this.dialect.readIfFits !== undefined;
    const emit = (records: SqlRows, last: Position) => {
      // The emit that fills the window is the one the loop waits on next: it is committed at once, not after
      // queue.commit_interval. Otherwise a window holding fewer than commit_every_records (4 emits of
      // batch_size 100) waits for the interval every time: 400 rows per 500 ms, whatever the database gives.
      // Counted among the emits not yet committed: asking for every emit once the array is full would commit
      // each one alone (one commit per 100 rows instead of per window).
      const commitNow = ++unsettled >= MAX_PENDING_EMITS;
      const emitted = emitSqlRows(ctx, records, encodePosition(last), commitNow ? COMMIT_NOW : undefined).then(
        () => {
          unsettled--;
          this.committed = last;
        },
        (err: unknown) => {
          unsettled--;
          emitError ??= err;
        },
      );
      pending.push(emitted);
    };
    try {
      while (passed < max_rows_per_poll && emitError === undefined && !ctx.signal.aborted) {
        await ctx.room?.();
        const limit = Math.min(batch_size, max_rows_per_poll - passed);
        if (wholeBatches) {
          const whole = await this.deliverWhole(ctx, after, upTo, limit, max_row_bytes, max_batch_bytes, where, emit);
          if (whole !== undefined) {
            if (whole.rows === 0) break;
            after = whole.last;
            total += whole.rows;
            bytesRead += whole.bytes;
            passed += whole.rows;
            if (pending.length >= MAX_PENDING_EMITS) await pending.shift();
            if (whole.rows < limit) break;
            continue;
          }
          wholeBatches = false;
        }
        const sizes = await this.dialect.sizes(after, upTo, limit);
        if (sizes.length === 0) break;
        const first = sizes[0]!;
        let consumed: number;
        if (first.bytes > max_row_bytes) {
          this.skipOversized(ctx, first, where);
          after = first.position;
          consumed = 1;
          emit([], first.position);
        } else {
          // Rows up to the byte budget (at least one), stopping short of an oversized row.
          let take = 0;
          let bytes = 0;
          for (let i = 0; i < sizes.length; i++) {
            const row = sizes[i]!;
            if (row.bytes > max_row_bytes || (take > 0 && bytes + row.bytes > max_batch_bytes)) break;
            take++;
            bytes += row.bytes;
          }
          const read = await this.deliverRead(ctx, after, sizes[take - 1]!.position, take, where, emit);
          if (read.rows === 0) break;
          after = read.last;
          total += read.rows;
          bytesRead += bytes;
          consumed = read.rows;
        }
        passed += consumed;
        if (pending.length >= MAX_PENDING_EMITS) await pending.shift();
        // Fewer rows than asked for, and all of them taken: nothing more up to `upTo` for now.
        if (sizes.length < limit && consumed === sizes.length) break;
      }
    } finally {
      // Emits commit in order; waiting for all of them leaves `committed` at what the queue holds.
      await Promise.all(pending);
    }
    if (emitError !== undefined) throw emitError;
    if (total > 0) ctx.counters.add('rows', total);
    if (bytesRead > 0) ctx.counters.add('bytes', bytesRead);
  }

  /*
   * The two steps below read rows and deliver them, and return only counts: rows held by `readUpTo`'s frame
   * would stay reachable across its awaits (the next batch's room, an earlier emit's commit), long enough for
   * the young generation to promote them to old space, where only a full collection frees them. The queue
   * writes them as bytes at once (queue.ts, `write`), so they need not live past `deliver`.
   */

  /** The next rows read whole and delivered if all of them fit (`readIfFits`); undefined if they do not. */
  private async deliverWhole(
    ctx: SourceContext,
    after: Position | undefined,
    upTo: Position,
    limit: number,
    maxRowBytes: number,
    maxBatchBytes: number,
    where: string,
    emit: (rows: SqlRows, last: Position) => void,
  ): Promise<{ rows: number; bytes: number; last: Position | undefined } | undefined> {
    const fitting = await this.dialect.readIfFits!(after, upTo, limit, maxRowBytes, maxBatchBytes);
    if (fitting === undefined) return undefined;
    const rows = rowCount(fitting.rows);
    if (rows === 0) return { rows: 0, bytes: 0, last: after };
    return { rows, bytes: fitting.bytes, last: this.deliver(ctx, fitting.rows, where, emit) };
  }

  /** The rows after `after` up to `upTo` (at most `limit`) read and delivered. */
  private async deliverRead(
    ctx: SourceContext,
    after: Position | undefined,
    upTo: Position,
    limit: number,
    where: string,
    emit: (rows: SqlRows, last: Position) => void,
  ): Promise<{ rows: number; last: Position | undefined }> {
    const rows = await this.dialect.read(after, upTo, limit);
    const count = rowCount(rows);
    if (count === 0) return { rows: 0, last: after };
    return { rows: count, last: this.deliver(ctx, rows, where, emit) };
  }

  /** Parses the rows' JSON columns, emits them with the last one's position as cursor, and returns that position. */
  private deliver(ctx: SourceContext, rows: SqlRows, where: string, emit: (rows: SqlRows, last: Position) => void): Position {
    const json = this.config.json_columns;
    if (json.length > 0) parseJsonColumns(rows, json, ctx);
    const last = lastPosition(rows, this.config, where);
    emit(rows, last);
    return last;
  }

  /** Counted every time; logged at a bounded rate per input, naming the row so it can be found and fixed. */
  private skipOversized(ctx: SourceContext, row: RowSize, where: string): void {
    ctx.problems.report(
      'row_too_large',
      'SQL source: a row is larger than max_row_bytes; skipped (not delivered), the cursor moves past it',
      {
        where,
        id: typeof row.position.id === 'bigint' ? row.position.id.toString() : row.position.id,
        ...(row.position.ts === undefined ? {} : { ts: typeof row.position.ts === 'bigint' ? row.position.ts.toString() : row.position.ts }),
        bytes: row.bytes,
        max_row_bytes: this.config.max_row_bytes,
      },
      { key: this.input },
    );
  }

  async close(): Promise<void> {
    await this.dialect.disconnect();
  }
}

/** True when `a` comes before `b` in cursor order. */
function isBefore(a: Position, b: Position): boolean {
  if (a.ts !== undefined && b.ts !== undefined && a.ts !== b.ts) return a.ts < b.ts;
  return a.id < b.id;
}

function printable(p: Position): string {
  return JSON.stringify(encodePosition(p));
}

/** The config check a schema-level refinement cannot carry (driver options are merged by shape). */
export function checkInput(config: SqlCursorConfig, driver: string): void {
  if ((config.table === undefined) === (config.query === undefined)) {
    throw new AgentError('CONFIG_INVALID', `${driver} source: give exactly one of table or query`);
  }
}
