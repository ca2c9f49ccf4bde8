import { positionOf, type Position, type TimeValue, type IntegerValue } from './position.ts';
import type { SqlCursorConfig } from './options.ts';

/** How one SQL dialect spells identifiers and bound values. */
export interface SqlSyntax {
  quote(identifier: string): string;
  /** Adds a value to `values` and returns the SQL that stands for it. */
  bind(value: IntegerValue | TimeValue, values: unknown[]): string;
}

export interface Statement {
  text: string;
  values: unknown[];
}

function source(config: SqlCursorConfig, syntax: SqlSyntax): string {
  if (config.query !== undefined) return `(${config.query.trim().replace(/;\s*$/, '')}) AS edge_source`;
  return config
    .table!.split('.')
    .map((part) => syntax.quote(part))
    .join('.');
}

/**
 * `key > p` (after) or `key <= p` (not after), by id or by (timestamp, id) written out for index use
 * everywhere. The (timestamp, id) form leads with the timestamp's bound alone (`ts >= t`, `ts <= t`), which
 * the rest implies: the OR that follows is no range a planner can seek, so without it SQLite read an index on
 * (ts, id) from its first entry at every batch (7 ms per 1000-row batch 190,000 rows in, 0.26 ms with it).
 */
function compare(config: SqlCursorConfig, syntax: SqlSyntax, p: Position, after: boolean, values: unknown[]): string {
  const id = syntax.quote(config.id_column);
  if (config.timestamp_column === undefined) return `${id} ${after ? '>' : '<='} ${syntax.bind(p.id, values)}`;
  const ts = syntax.quote(config.timestamp_column);
  const t0 = syntax.bind(p.ts!, values);
  const t1 = syntax.bind(p.ts!, values);
  const t2 = syntax.bind(p.ts!, values);
  return after
    ? `${ts} >= ${t0} AND (${ts} > ${t1} OR (${ts} = ${t2} AND ${id} > ${syntax.bind(p.id, values)}))`
    : `${ts} <= ${t0} AND (${ts} < ${t1} OR (${ts} = ${t2} AND ${id} <= ${syntax.bind(p.id, values)}))`;
}

function order(config: SqlCursorConfig, syntax: SqlSyntax, direction: '' | ' DESC'): string {
  const id = `${syntax.quote(config.id_column)}${direction}`;
  return config.timestamp_column === undefined ? id : `${syntax.quote(config.timestamp_column)}${direction}, ${id}`;
}

/** The rows after `after` up to and including `upTo`, in cursor order. */
export function readStatement(config: SqlCursorConfig, syntax: SqlSyntax, after: Position | undefined, upTo: Position, limit: number): Statement {
  const values: unknown[] = [];
  const conditions = [];
  if (after) conditions.push(compare(config, syntax, after, true, values));
  conditions.push(compare(config, syntax, upTo, false, values));
  // The limit is bound, not written into the text: it varies read by read (as many rows as fit), and SQLite
  // keeps one prepared statement per text.
  const bound = syntax.bind(limit, values);
  return { text: `SELECT * FROM ${source(config, syntax)} WHERE ${conditions.join(' AND ')} ORDER BY ${order(config, syntax, '')} LIMIT ${bound}`, values };
}

function cursorColumns(config: SqlCursorConfig, syntax: SqlSyntax): string[] {
  return [config.id_column, ...(config.timestamp_column === undefined ? [] : [config.timestamp_column])].map((c) => syntax.quote(c));
}

/**
 * The highest cursor position visible now (one row, or none for an empty table). Rows with a NULL cursor value
 * are left out: they have no place in the cursor order (PostgreSQL sorts NULL first when descending, so one such
 * row would otherwise stand for the maximum and hold the source still). `nullCursorStatement` counts them.
 */
export function maxStatement(config: SqlCursorConfig, syntax: SqlSyntax): string {
  const columns = cursorColumns(config, syntax);
  const notNull = columns.map((c) => `${c} IS NOT NULL`).join(' AND ');
  return `SELECT ${columns.join(', ')} FROM ${source(config, syntax)} WHERE ${notNull} ORDER BY ${order(config, syntax, ' DESC')} LIMIT 1`;
}

/** The alias of the count in the NULL-cursor statement. */
export const NULL_ROWS = 'edge_null_rows';

/** How many rows have a NULL cursor value (never read: see maxStatement). */
export function nullCursorStatement(config: SqlCursorConfig, syntax: SqlSyntax): string {
  const anyNull = cursorColumns(config, syntax)
    .map((c) => `${c} IS NULL`)
    .join(' OR ');
  return `SELECT COUNT(*) AS ${NULL_ROWS} FROM ${source(config, syntax)} WHERE ${anyNull}`;
}

/** What a log line or an error calls this source's input: the table, or "query". */
export function inputName(config: SqlCursorConfig): string {
  return config.table !== undefined ? `table ${config.table}` : 'query';
}

/** The alias of a row's size in the sizes statement. */
export const ROW_BYTES = 'edge_row_bytes';

/** Every column of the source, no row: its result names the columns the sizes statement adds up. */
export function columnsStatement(config: SqlCursorConfig, syntax: SqlSyntax): string {
  return `SELECT * FROM ${source(config, syntax)} LIMIT 0`;
}

/**
 * The cursor key and the size in bytes of each row that `readStatement` would return, without the rows'
 * contents: `sizeOf` gives a column's size in the dialect's SQL (NULL counted as 0 here).
 */
export function sizesStatement(
  config: SqlCursorConfig,
  syntax: SqlSyntax,
  columns: readonly string[],
  sizeOf: (quoted: string, column: string) => string,
  after: Position | undefined,
  upTo: Position,
  limit: number,
): Statement {
  const read = readStatement(config, syntax, after, upTo, limit);
  const keys = [config.id_column, ...(config.timestamp_column === undefined ? [] : [config.timestamp_column])].map((c) => syntax.quote(c));
  return { text: read.text.replace(/^SELECT \*/, `SELECT ${keys.join(', ')}, ${rowBytes(syntax, columns, sizeOf)} AS ${ROW_BYTES}`), values: read.values };
}

/** A row's size: its columns' sizes added up, NULL counted as 0. */
function rowBytes(syntax: SqlSyntax, columns: readonly string[], sizeOf: (quoted: string, column: string) => string): string {
  return columns.length === 0 ? '0' : columns.map((c) => `COALESCE(${sizeOf(syntax.quote(c), c)}, 0)`).join(' + ');
}

/** The sizes statement's rows as positions and byte counts (a database may hand a sum back as BigInt or text). */
export function rowSizes(rows: Record<string, unknown>[], config: SqlCursorConfig, where: string): { position: Position; bytes: number }[] {
  return rows.map((row) => ({ position: positionOf(row, config.id_column, config.timestamp_column, where), bytes: Number(row[ROW_BYTES] ?? 0) }));
}

/** Aliases of the size totals statement's one row. */
const TOTAL_ROWS = 'edge_rows';
const LARGEST_ROW_BYTES = 'edge_largest_row_bytes';
const TOTAL_BYTES = 'edge_total_bytes';

/** How many rows `readStatement` would return, the largest one's size, and all their sizes added up. */
export interface SizeTotals {
  readonly rows: number;
  readonly largest: number;
  readonly bytes: number;
}

/**
 * The rows `readStatement` would return as their sizes alone, one column, for `sizeTotalsStatement` and
 * `sizeSumStatement` to add up (without the keys `sizesStatement` adds: one column fewer to read per row).
 */
export function rowBytesStatement(
  config: SqlCursorConfig,
  syntax: SqlSyntax,
  columns: readonly string[],
  sizeOf: (quoted: string, column: string) => string,
  after: Position | undefined,
  upTo: Position,
  limit: number,
): Statement {
  const read = readStatement(config, syntax, after, upTo, limit);
  return { text: read.text.replace(/^SELECT \*/, `SELECT ${rowBytes(syntax, columns, sizeOf)} AS ${ROW_BYTES}`), values: read.values };
}

/** One row of totals over the rows `readStatement` would return, from their sizes (`rowBytesStatement`). */
export function sizeTotalsStatement(sizes: Statement): Statement {
  return {
    text: `SELECT COUNT(*) AS ${TOTAL_ROWS}, MAX(${ROW_BYTES}) AS ${LARGEST_ROW_BYTES}, SUM(${ROW_BYTES}) AS ${TOTAL_BYTES} FROM (${sizes.text}) AS edge_sizes`,
    values: sizes.values,
  };
}

/**
 * The sum alone of the sizes `sizeTotalsStatement` totals (its one value NULL when there is no row). A sum
 * within both max_row_bytes and max_batch_bytes says the rows fit, since no row is larger than the sum: the
 * count and the largest row are then not needed, and adding them up cost ≈ 280 of the totals' ≈ 3,000
 * instructions per row (docs/benchmarks.md, "Session 14: statements prepared again at every run; the sum alone").
 */
export function sizeSumStatement(sizes: Statement): Statement {
  return { text: `SELECT SUM(${ROW_BYTES}) AS ${TOTAL_BYTES} FROM (${sizes.text}) AS edge_sizes`, values: sizes.values };
}

/** The sum statement's one value as a number, undefined when there is no row (a database may hand a sum back as BigInt or text). */
export function sizeSum(row: Record<string, unknown> | undefined): number | undefined {
  const sum = row?.[TOTAL_BYTES];
  return sum === null || sum === undefined ? undefined : Number(sum);
}

/** The totals statement's row as numbers (a database may hand a sum back as BigInt or text; NULL for no rows). */
export function sizeTotals(row: Record<string, unknown> | undefined): SizeTotals {
  return { rows: Number(row?.[TOTAL_ROWS] ?? 0), largest: Number(row?.[LARGEST_ROW_BYTES] ?? 0), bytes: Number(row?.[TOTAL_BYTES] ?? 0) };
}
