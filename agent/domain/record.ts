/**
 * The ground floor: what flows through the agent. Nothing here imports anything; every other layer may
 * import these types.
 */

/** One record: a plain object of CBOR-encodable values. The queue stamps `ts` (ms since epoch) if absent. */
export type AgentRecord = { [field: string]: unknown };

/**
 * Records that share their keys, as a SQL result holds them: row `i` is the record whose key `columns[j]`
 * has the value `rows[i][j]`. A source that reads rows as arrays emits them so, and the queue writes them
 * as the records `asRecords` makes of them, byte for byte, without making them: a row as an object cost more
 * than its values (docs/benchmarks.md, "Session 13: SQL rows as arrays").
 */
export interface RecordRows {
  readonly columns: readonly string[];
  readonly rows: unknown[][];
}

/** What a source emits: records, or rows that share their keys. */
export type EmittedRecords = AgentRecord[] | RecordRows;

/** True for rows that share their keys. */
export function isRecordRows(records: EmittedRecords): records is RecordRows {
  return !Array.isArray(records);
}

/** How many records an emit holds. */
export function recordCount(records: EmittedRecords): number {
  return Array.isArray(records) ? records.length : records.rows.length;
}

/**
 * True when rows with these columns stand for records with exactly these keys in this order, so that they
 * can be written without making the records: no name twice (an object keeps one), no array index (an
 * object puts those first, in ascending order), no `__proto__` (an object takes it for its prototype).
 */
export function ordinaryColumns(columns: readonly string[]): boolean {
  for (let j = 0; j < columns.length; j++) {
    const column = columns[j]!;
    if (column === '__proto__' || isArrayIndex(column) || columns.indexOf(column) !== j) return false;
  }
  return true;
}

/** A property name an object orders first: the canonical form of an integer below 2^32 − 1. */
function isArrayIndex(key: string): boolean {
  return /^(?:0|[1-9]\d{0,9})$/.test(key) && Number(key) < 4294967295;
}

/** One row as the record it stands for: its values set in column order, as an object literal would. */
export function rowAsRecord(columns: readonly string[], values: readonly unknown[]): AgentRecord {
  const record: AgentRecord = {};
  for (let j = 0; j < columns.length; j++) record[columns[j]!] = values[j];
  return record;
}

/** An emit's records as objects (rows made into records; records as they are). */
export function asRecords(records: EmittedRecords): AgentRecord[] {
  if (Array.isArray(records)) return records;
  return records.rows.map((values) => rowAsRecord(records.columns, values));
}

/** Where a source is in its input (a DB high-water mark, a byte offset…); committed with its records. */
export type Cursor = string | number | boolean | null | Cursor[] | { [key: string]: Cursor };
