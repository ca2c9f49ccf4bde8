import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { AgentError, asRecords, openSqlite, ordinaryColumns, type DriverEnv, type RecordRows } from '../../../agent/sdk/index.ts';
import type { Failure, FittingRows, Observation, RowSize, SqlDialect } from '../../common/sql/poller.ts';
import { positionOf, type Position } from '../../common/sql/position.ts';
import type { SqlRows } from '../../common/sql/rows.ts';
import {
  columnsStatement,
  maxStatement,
  readStatement,
  rowBytesStatement,
  rowSizes,
  sizesStatement,
  sizeSum,
  sizeSumStatement,
  sizeTotals,
  sizeTotalsStatement,
  type SqlSyntax,
  NULL_ROWS,
  nullCursorStatement,
} from '../../common/sql/statements.ts';
import type { SqlCursorConfig } from '../../common/sql/options.ts';
import { columnSize, columnSizings, type ColumnSizing } from './sizing.ts';

/**
 * A bound value is written `+?`: SQLite would otherwise plan with it (the LIMIT most of all) and prepare the
 * statement again at every run after a new binding (agent/queue/storage.ts, `prepareStatements`, says how
 * much that cost). Unary plus changes neither the value, its affinity, nor the index a comparison uses.
 */
export const sqliteSyntax: SqlSyntax = {
  quote: (identifier) => `"${identifier.replaceAll('"', '""')}"`,
  bind: (value, values) => {
    values.push(value);
    return '+?';
  },
};

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
/** Module constants: `Number.…` inside the per-value loop is a global load each time until it is optimised. */
const MAX_SAFE_NUMBER = Number.MAX_SAFE_INTEGER;
const MIN_SAFE_NUMBER = Number.MIN_SAFE_INTEGER;

/**
 * Maps a row read with safe integers in place: INTEGER beyond 2^53 stays a BigInt, the rest become numbers;
 * BLOB becomes a plain Uint8Array.
 */
function mapSafeValues(values: unknown[]): unknown[] {
  for (let j = 0; j < values.length; j++) {
    const v = values[j];
    if (typeof v === 'bigint') {
      if (v <= MAX_SAFE && v >= MIN_SAFE) values[j] = Number(v);
    } else if (Buffer.isBuffer(v)) values[j] = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }
  return values;
}

/**
 * Maps rows read with plain numbers in place (BLOB to a plain Uint8Array); false when a value is an integral
 * number beyond 2^53, which an INTEGER may have been rounded to: the rows must then be read again with safe
 * integers. Reading BigInts only then saves an allocation per INTEGER value of every row (ids, timestamps).
 */
function mapFastValues(rows: unknown[][]): boolean {
  for (let i = 0; i < rows.length; i++) {
    const values = rows[i]!;
    for (let j = 0; j < values.length; j++) {
      const v = values[j];
      if (typeof v === 'number') {
        if ((v > MAX_SAFE_NUMBER || v < MIN_SAFE_NUMBER) && Number.isInteger(v)) return false;
        // Only a BLOB is an object here: text (most values) skips the Buffer check, a global load and a call
        // per value (half of this walk's cost for 120 B rows).
      } else if (typeof v === 'object' && v !== null && Buffer.isBuffer(v)) values[j] = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    }
  }
  return true;
}

/**
 * SQLite through better-sqlite3, read-only: the file belongs to another program, which keeps writing it (WAL
 * mode lets this reader run beside its writer). SQLite has one writer at a time and ids are taken inside the
 * write transaction, so rows become visible in id order: there are no late commits to wait for.
 */
export class SqliteDialect implements SqlDialect<null> {
  readonly where: string;
  private db: Database.Database | undefined;
  private readonly path: string;
  private readonly config: SqlCursorConfig;
  /**
   * Prepared statements by text, giving rows as arrays (better-sqlite3's `raw`), with their columns: one
   * reading plain numbers, one reading INTEGER as BigInt.
   */
  private readonly statements = new Map<string, { fast: Database.Statement; safe: Database.Statement; columns: string[] }>();
  /** The statements' column lists whose rows as arrays stand for the same records (`ordinaryColumns`), checked once. */
  private readonly ordinary = new WeakSet<readonly string[]>();
  private columns: string[] | undefined;
  /** How each column is sized (sizing.ts), read from the schema with `columns`. */
  private sizings = new Map<string, ColumnSizing>();
  /** The size expression of a column, as the sizes statements take it. */
  private readonly sizeOf = (quoted: string, column: string) => columnSize(this.sizings.get(column) ?? 'any', quoted);
  /** The file the open handle reads (device and inode), to notice when the path names another file. */
  private identity: { dev: number; ino: number } | undefined;
  private readonly env: Pick<DriverEnv, 'log' | 'counters'>;

  constructor(path: string, config: SqlCursorConfig, env: Pick<DriverEnv, 'log' | 'counters'>) {
    this.path = path;
    this.config = config;
    this.env = env;
    this.where = `SQLite database ${path}`;
  }

  get connected(): boolean {
    return this.db !== undefined;
  }

  async connect(): Promise<void> {
    // timeout is SQLite's busy_timeout: how long a read waits for a lock (a checkpoint, a rollback journal writer).
    const db = openSqlite(this.path, { readonly: true, fileMustExist: true, timeout: this.config.query_timeout });
    this.db = db;
    const stat = statSync(this.path, { throwIfNoEntry: false });
    this.identity = stat ? { dev: stat.dev, ino: stat.ino } : undefined;
  }

  /**
   * A writer that replaces its file (deletes it and creates a new one, or renames a new one over it) leaves
   * the open handle on the old inode, which never changes again: the source would read nothing more, and say
   * nothing. The path is checked at every poll; another file there is reopened (counted `file_replaced`,
   * logged); no file there closes the handle, and the reopen fails (counted `open_errors`) until it is back.
   */
  private async followReplacement(): Promise<void> {
    const was = this.identity;
    if (!was) return;
    const stat = statSync(this.path, { throwIfNoEntry: false });
    if (stat && stat.dev === was.dev && stat.ino === was.ino) return;
    this.env.counters.add('file_replaced');
    this.env.log.warn(
      { where: this.where, inode: was.ino, now: stat ? stat.ino : 'no file' },
      stat ? 'SQLite file was replaced; reopening it' : 'SQLite file was deleted; reopening it when it is back',
    );
    await this.disconnect();
    await this.connect();
  }

  /**
   * A statement's rows as arrays under their column names: better-sqlite3 makes each row with one call
   * either way, and an array of the values costs less than an object (whose numbers V8 then boxes again at
   * every read by key): docs/benchmarks.md, "Session 13: SQL rows as arrays".
   */
  private rows(text: string, values: unknown[] = []): RecordRows {
    const db = this.db;
    if (!db) throw new AgentError('SOURCE_FAILED', `${this.where}: not open`, { retryable: true });
    let statement = this.statements.get(text);
    if (!statement) {
      const fast = db.prepare(text).safeIntegers(false).raw(true);
      const columns = fast.columns().map((c) => c.name);
      if (ordinaryColumns(columns)) this.ordinary.add(columns);
      statement = { fast, safe: db.prepare(text).safeIntegers(true).raw(true), columns };
      this.statements.set(text, statement);
    }
    let rows = statement.fast.all(...values) as unknown[][];
    // A value may have lost digits as a number: read the same rows again, exactly (the read is repeatable: the
    // statement's bounds are fixed positions).
    if (!mapFastValues(rows)) rows = (statement.safe.all(...values) as unknown[][]).map(mapSafeValues);
    // SQLite prepares `SELECT *` again when the writer alters the table (a column added, dropped, renamed):
    // the names are read again after each run, or values would go out under the old ones.
    const columns = statement.fast.columns();
    if (columns.length !== statement.columns.length || columns.some((c, j) => c.name !== statement.columns[j])) {
      statement.columns = columns.map((c) => c.name);
      if (ordinaryColumns(statement.columns)) this.ordinary.add(statement.columns);
    }
    return { columns: statement.columns, rows };
  }

  /** The rows of a read as arrays where they stand for the same records (`ordinaryColumns`), else as records. */
  private readRows(text: string, values: unknown[]): SqlRows {
    const rows = this.rows(text, values);
    return this.ordinary.has(rows.columns) ? rows : asRecords(rows);
  }

  /** A statement's rows as records, for the few-row statements (the maximum, counts, sizes). */
  private all(text: string, values: unknown[] = []): Record<string, unknown>[] {
    return asRecords(this.rows(text, values));
  }

  async observe(): Promise<Observation<null>> {
    await this.followReplacement();
    const [row] = this.all(maxStatement(this.config, sqliteSyntax));
    return { max: row ? positionOf(row, this.config.id_column, this.config.timestamp_column, this.where) : undefined, fence: null, at: Date.now() };
  }

  settled(): boolean {
    return true;
  }

  async countNullCursor(): Promise<number> {
    const [row] = this.all(nullCursorStatement(this.config, sqliteSyntax));
    return Number(row?.[NULL_ROWS] ?? 0);
  }

  async read(after: Position | undefined, upTo: Position, limit: number): Promise<SqlRows> {
    const { text, values } = readStatement(this.config, sqliteSyntax, after, upTo, limit);
    return this.readRows(text, values);
  }

  async sizes(after: Position | undefined, upTo: Position, limit: number): Promise<RowSize[]> {
    const { text, values } = sizesStatement(this.config, sqliteSyntax, this.columnNames(), this.sizeOf, after, upTo, limit);
    return rowSizes(this.all(text, values), this.config, this.where);
  }

  /**
   * The sizes first, then the rows if they fit, inside one read transaction: both see the same snapshot of
   * the file even while its writer commits, so no row is fetched that was not sized. Reading a batch this way
   * makes no JS object per row for its size (a sixth of what the agent allocated end to end for 120 B rows).
   * The sum alone settles it when it is within both bounds (`sizeSumStatement`); above either, the totals say
   * whether a row is too large or the rows only too many together.
   */
  async readIfFits(after: Position | undefined, upTo: Position, limit: number, maxRowBytes: number, maxBatchBytes: number): Promise<FittingRows | undefined> {
    const db = this.db;
    if (!db) throw new AgentError('SOURCE_FAILED', `${this.where}: not open`, { retryable: true });
    const sizes = rowBytesStatement(this.config, sqliteSyntax, this.columnNames(), this.sizeOf, after, upTo, limit);
    const sumStatement = sizeSumStatement(sizes);
    const read = readStatement(this.config, sqliteSyntax, after, upTo, limit);
    return db.transaction((): FittingRows | undefined => {
      const sum = sizeSum(this.all(sumStatement.text, sumStatement.values)[0]);
      if (sum === undefined) return { rows: [], bytes: 0 };
      if (sum > Math.min(maxRowBytes, maxBatchBytes)) {
        const totalsStatement = sizeTotalsStatement(sizes);
        const totals = sizeTotals(this.all(totalsStatement.text, totalsStatement.values)[0]);
        if (totals.largest > maxRowBytes || (totals.rows > 1 && totals.bytes > maxBatchBytes)) return undefined;
      }
      return { rows: this.readRows(read.text, read.values), bytes: sum };
    })();
  }

  /** Columns as of now: a column the writer adds later is counted from the next statement cache reset. */
  private columnNames(): string[] {
    const db = this.db;
    if (!db) throw new AgentError('SOURCE_FAILED', `${this.where}: not open`, { retryable: true });
    if (this.columns === undefined) {
      const statement = db.prepare(columnsStatement(this.config, sqliteSyntax));
      this.sizings = columnSizings(db, statement, this.config.table);
      this.columns = [...this.sizings.keys()];
    }
    return this.columns;
  }

  async disconnect(): Promise<void> {
    this.columns = undefined;
    this.identity = undefined;
    const db = this.db;
    this.db = undefined;
    this.statements.clear();
    db?.close();
  }

  classify(err: unknown, doing: string): Failure {
    const code = String((err as { code?: unknown }).code ?? '');
    const message = err instanceof Error ? err.message : String(err);
    const input = this.config.table !== undefined ? `table ${this.config.table}` : 'the configured query';
    const fail = (counter: string, what: string, retryable: boolean, reconnect: boolean): Failure => ({
      error: new AgentError('SOURCE_FAILED', `${this.where}: ${what}`, { cause: err, retryable }),
      counter,
      reconnect,
    });
    // A table dropped by the writer: prepared statements die with it, so forget them (reopen).
    if (/no such table/i.test(message))
      return fail('missing_table', `${input} does not exist (dropped or renamed?) while ${doing}; retrying every poll`, true, true);
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED')
      return fail('busy', `database stayed locked longer than query_timeout (${this.config.query_timeout} ms) while ${doing}`, true, false);
    if (code === 'SQLITE_CANTOPEN' || /directory does not exist|unable to open/i.test(message))
      return fail('open_errors', `cannot open the file (${message}); retrying every poll`, true, true);
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code === 'SQLITE_IOERR' || code.startsWith('SQLITE_IOERR')) {
      return fail('open_errors', `the file is unreadable (${message}); reopening at the next poll`, true, true);
    }
    if (/no such column|syntax error/i.test(message))
      return fail('query_errors', `${input}: ${message} (check id_column, timestamp_column and query)`, false, true);
    return fail('query_errors', `${doing} ${input} failed: ${message}`, true, true);
  }
}
