import pg from 'pg';

/**
 * Type parsers for one client (never pg's global table, which other code in the process may rely on):
 * values keep their precision and their zone, as CBOR-friendly JS values. See README.md for the table.
 */
const text = (oid: number) => pg.types.getTypeParser(oid, 'text') as (value: string) => unknown;
const textArray = text(1009) as (value: string) => unknown[];

/** int8: a number while exact, a BigInt beyond 2^53 (the queue's codec writes it as a CBOR integer). */
export function integer(value: string): number | bigint {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : BigInt(value);
}

/** timestamptz as ISO 8601 with its offset (the session runs in UTC, so "Z"); microseconds kept. */
export function timestampWithZone(value: string): string {
  const m = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(?::(\d\d))?(?::(\d\d))?$/.exec(value);
  if (!m) return value; // infinity, -infinity, BC dates: PostgreSQL's own text, unchanged
  const offset = m[3] === '+00' && !m[4] && !m[5] ? 'Z' : `${m[3]}:${m[4] ?? '00'}${m[5] ? `:${m[5]}` : ''}`;
  return `${m[1]}T${m[2]}${offset}`;
}

/** timestamp (no zone) as ISO 8601 without an offset: no zone is invented. */
export function timestampWithoutZone(value: string): string {
  const m = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)$/.exec(value);
  return m ? `${m[1]}T${m[2]}` : value;
}

function bytes(value: string): Uint8Array {
  const buffer = text(17)(value) as Buffer;
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

const identity = (value: string) => value;

/** Arrays of the overridden types: PostgreSQL's array text, elements through the element parser; nested kept. */
function arrayOf(element: (value: string) => unknown): (value: string) => unknown {
  const map = (v: unknown): unknown => (Array.isArray(v) ? v.map(map) : v === null ? null : element(v as string));
  return (value) => map(textArray(value));
}

const PARSERS = new Map<number, (value: string) => unknown>([
  [20, integer], // int8
  [1016, arrayOf(integer)],
  [1700, identity], // numeric: text, no float rounding
  [1231, arrayOf(identity)],
  [1184, timestampWithZone],
  [1185, arrayOf(timestampWithZone)],
  [1114, timestampWithoutZone],
  [1115, arrayOf(timestampWithoutZone)],
  [1082, identity], // date: "2024-03-01", not a Date at local midnight
  [1182, arrayOf(identity)],
  [1186, identity], // interval: ISO 8601 duration (IntervalStyle iso_8601 is set per session)
  [1187, arrayOf(identity)],
  [17, bytes], // bytea
  [1001, arrayOf(bytes)],
]);

export const clientTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (format === 'binary') return pg.types.getTypeParser(oid, 'binary') as (value: string) => unknown;
    return PARSERS.get(oid) ?? text(oid);
  },
};
