import type { Position, TimeValue, IntegerValue } from './position.ts';
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

/** `key > p` (after) or `key <= p` (not after), by id or by (timestamp, id) written out for index use everywhere. */
function compare(config: SqlCursorConfig, syntax: SqlSyntax, p: Position, after: boolean, values: unknown[]): string {
  const id = syntax.quote(config.id_column);
  if (config.timestamp_column === undefined) return `${id} ${after ? '>' : '<='} ${syntax.bind(p.id, values)}`;
  const ts = syntax.quote(config.timestamp_column);
  const t1 = syntax.bind(p.ts!, values);
  const t2 = syntax.bind(p.ts!, values);
  return after
    ? `(${ts} > ${t1} OR (${ts} = ${t2} AND ${id} > ${syntax.bind(p.id, values)}))`
    : `(${ts} < ${t1} OR (${ts} = ${t2} AND ${id} <= ${syntax.bind(p.id, values)}))`;
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
  return { text: `SELECT * FROM ${source(config, syntax)} WHERE ${conditions.join(' AND ')} ORDER BY ${order(config, syntax, '')} LIMIT ${limit}`, values };
}

/** The highest cursor position visible now (one row, or none for an empty table). */
export function maxStatement(config: SqlCursorConfig, syntax: SqlSyntax): string {
  const columns = [config.id_column, ...(config.timestamp_column === undefined ? [] : [config.timestamp_column])].map((c) => syntax.quote(c)).join(', ');
  return `SELECT ${columns} FROM ${source(config, syntax)} ORDER BY ${order(config, syntax, ' DESC')} LIMIT 1`;
}

/** What a log line or an error calls this source's input: the table, or "query". */
export function inputName(config: SqlCursorConfig): string {
  return config.table !== undefined ? `table ${config.table}` : 'query';
}
