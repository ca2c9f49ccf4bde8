import { AgentError, type Cursor } from '../../../agent/sdk/index.ts';

/** An integer key as the driver reads it: a number while exact, a BigInt beyond 2^53. */
export type IntegerValue = number | bigint;
/** A timestamp key in the form the record carries it (ISO text, or a number in SQLite). */
export type TimeValue = string | number | bigint;

/** Where the source is in its table: the last row committed, by (timestamp, id) or by id alone. */
export interface Position {
  readonly id: IntegerValue;
  readonly ts?: TimeValue;
}

/**
 * The committed form (JSON): ids beyond 2^53 as decimal text, since JSON numbers would round them; a BigInt
 * timestamp (SQLite epoch microseconds, say) as { int: text } so it binds back as an integer, not as text.
 */
export function encodePosition(p: Position): Cursor {
  const id = typeof p.id === 'bigint' ? p.id.toString() : p.id;
  if (p.ts === undefined) return { id };
  return { id, ts: typeof p.ts === 'bigint' ? { int: p.ts.toString() } : p.ts };
}

export function decodePosition(cursor: Cursor | undefined, timestampMode: boolean, where: string): Position | undefined {
  if (cursor === undefined || cursor === null) return undefined;
  const bad = () =>
    new AgentError(
      'SOURCE_FAILED',
      `${where}: the committed cursor ${JSON.stringify(cursor)} does not fit the configured cursor (${timestampMode ? 'timestamp_column + id_column' : 'id_column'}); give the source a new name to start over`,
    );
  if (typeof cursor !== 'object' || Array.isArray(cursor)) throw bad();
  const id = cursor.id;
  let idValue: IntegerValue;
  if (typeof id === 'number' && Number.isInteger(id)) idValue = id;
  else if (typeof id === 'string' && /^-?\d+$/.test(id)) idValue = BigInt(id);
  else throw bad();
  if (!timestampMode) {
    if (cursor.ts !== undefined) throw bad();
    return { id: idValue };
  }
  const ts = cursor.ts;
  if (typeof ts === 'string' || typeof ts === 'number') return { id: idValue, ts };
  if (ts && typeof ts === 'object' && !Array.isArray(ts) && typeof ts.int === 'string' && /^-?\d+$/.test(ts.int)) return { id: idValue, ts: BigInt(ts.int) };
  throw bad();
}

/** The position of a row as read, or an error naming the row's problem (a NULL or non-integer cursor column). */
export function positionOf(row: Record<string, unknown>, idColumn: string, tsColumn: string | undefined, where: string): Position {
  const id = row[idColumn];
  if (!(typeof id === 'bigint' || (typeof id === 'number' && Number.isInteger(id)))) {
    throw new AgentError(
      'SOURCE_FAILED',
      `${where}: cursor column ${idColumn} is ${id === undefined ? 'missing from the result' : `${JSON.stringify(String(id))}, not an integer`}`,
    );
  }
  if (tsColumn === undefined) return { id };
  const ts = row[tsColumn];
  if (!(typeof ts === 'string' || typeof ts === 'number' || typeof ts === 'bigint')) {
    throw new AgentError(
      'SOURCE_FAILED',
      `${where}: cursor column ${tsColumn} is ${ts === undefined ? 'missing from the result' : ts === null ? 'NULL' : 'not a timestamp'} in the row with ${idColumn} ${String(id)}`,
    );
  }
  return { id, ts };
}
