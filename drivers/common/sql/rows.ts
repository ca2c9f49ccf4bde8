import { asRecords, recordCount, type AgentRecord, type Cursor, type EmitOptions, type RecordRows, type SourceContext } from '../../../agent/sdk/index.ts';
import type { SqlCursorConfig } from './options.ts';
import { positionOf, type Position } from './position.ts';

/**
 * Rows as a dialect reads them: objects, or arrays under their column names (SQLite: making an object per
 * row cost more than reading its values, docs/benchmarks.md "Session 13: SQL rows as arrays").
 */
export type SqlRows = Record<string, unknown>[] | RecordRows;

/** How many rows. */
export function rowCount(rows: SqlRows): number {
  return recordCount(rows as AgentRecord[] | RecordRows);
}

/** The position of the last row (the cursor its emit commits). */
export function lastPosition(rows: SqlRows, config: SqlCursorConfig, where: string): Position {
  if (Array.isArray(rows)) return positionOf(rows[rows.length - 1]!, config.id_column, config.timestamp_column, where);
  const values = rows.rows[rows.rows.length - 1]!;
  const cursor: Record<string, unknown> = { [config.id_column]: values[rows.columns.indexOf(config.id_column)] };
  if (config.timestamp_column !== undefined) cursor[config.timestamp_column] = values[rows.columns.indexOf(config.timestamp_column)];
  return positionOf(cursor, config.id_column, config.timestamp_column, where);
}

/** Hands rows to the queue: as rows where the context takes them, else as records. */
export function emitSqlRows(ctx: SourceContext, rows: SqlRows, cursor: Cursor, options: EmitOptions | undefined): Promise<void> {
  if (Array.isArray(rows)) return ctx.emit(rows as AgentRecord[], cursor, options);
  return ctx.emitRows ? ctx.emitRows(rows, cursor, options) : ctx.emit(asRecords(rows), cursor, options);
}

/** Parses the rows' JSON columns in place; a value that is not JSON is delivered as text, and reported. */
export function parseJsonColumns(rows: SqlRows, columns: readonly string[], ctx: SourceContext): void {
  // Indexed: once per row, and an unoptimised for-of allocates an iterator and its results every time.
  if (Array.isArray(rows)) {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      for (let j = 0; j < columns.length; j++) {
        const parsed = parseJson(row[columns[j]!], columns[j]!, ctx);
        if (parsed !== NOT_PARSED) row[columns[j]!] = parsed;
      }
    }
    return;
  }
  for (let j = 0; j < columns.length; j++) {
    const at = rows.columns.indexOf(columns[j]!);
    if (at === -1) continue;
    for (let i = 0; i < rows.rows.length; i++) {
      const values = rows.rows[i]!;
      const parsed = parseJson(values[at], columns[j]!, ctx);
      if (parsed !== NOT_PARSED) values[at] = parsed;
    }
  }
}

const NOT_PARSED = Symbol('not parsed');

function parseJson(text: unknown, column: string, ctx: SourceContext): unknown {
  if (typeof text !== 'string') return NOT_PARSED;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Counted every time, logged at a bounded rate per column: one bad writer must not flood the log.
    ctx.problems.report('json_invalid', 'SQL source: a json_columns value is not JSON; delivered as text', { column }, { key: column });
    return NOT_PARSED;
  }
}
