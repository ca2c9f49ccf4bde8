/**
 * CPU of the statements the SQLite source could read a batch with, alone (no poller, no queue): the cpu-bench's
 * `sqlite-120` table (id, ts, sensor, value, unit, status) read in batches of `--batch-size` rows by each way of
 * sizing and reading it. Shows where a batch's reading CPU goes: walking the rows, sizing them with
 * `octet_length` (what bounds a batch in bytes), and making the row objects.
 *
 *   node scripts/bench/sqlite-read-bench.ts [--rows 200000] [--repeat 3] [--batch-size 1000]
 *
 * Prints CPU seconds per 100k rows for each way (the median of the runs), the ways alternated run by run. Node's
 * built-in SQLite (node:sqlite) reads the same statements too, for comparison.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type Database from 'better-sqlite3';
import { openSqlite } from '../../agent/sdk/index.ts';
import { numberArg, parseArgs } from './proc.ts';
import { makeReadingsTable } from './readings-table.ts';

const args = parseArgs(process.argv.slice(2));
const rows = numberArg(args, 'rows', 200_000);
const repeat = numberArg(args, 'repeat', 3);
const batchSize = numberArg(args, 'batch-size', 1000);

const COLUMNS = ['id', 'ts', 'sensor', 'value', 'unit', 'status'];
const SIZE = `(${COLUMNS.map((c) => `COALESCE(octet_length("${c}"), 0)`).join(' + ')})`;
const RANGE = `FROM readings WHERE id > ? AND id <= ${rows} ORDER BY id LIMIT ${batchSize}`;
/** Each row's content NULL when it is above a bound (a guard that never loads an oversized row). */
const GUARDED = COLUMNS.map((c) => (c === 'id' ? '"id"' : `CASE WHEN ${SIZE} > 1000000 THEN NULL ELSE "${c}" END AS "${c}"`)).join(', ');

const WAYS: Record<string, { text: string; iterate?: boolean }> = {
  'walk only (COUNT of the batch)': { text: `SELECT COUNT(*) FROM (SELECT id ${RANGE})` },
  'size totals (today, first step)': { text: `SELECT COUNT(*), MAX(b), SUM(b) FROM (SELECT id, ${SIZE} AS b ${RANGE})` },
  'rows, all() (today, second step)': { text: `SELECT * ${RANGE}` },
  'rows, iterate()': { text: `SELECT * ${RANGE}`, iterate: true },
  'rows + size column, all()': { text: `SELECT *, ${SIZE} AS b ${RANGE}` },
  'rows + size column, iterate()': { text: `SELECT *, ${SIZE} AS b ${RANGE}`, iterate: true },
  'guarded rows + size column, iterate()': { text: `SELECT ${GUARDED}, ${SIZE} AS b ${RANGE}`, iterate: true },
};

/** CPU seconds per 100k rows for reading the whole table batch by batch with `read` (it returns the rows seen). */
function once(read: (after: number) => number): number {
  const start = process.cpuUsage();
  let seen = 0;
  for (let after = 0; after < rows; after += batchSize) seen += read(after);
  const used = process.cpuUsage(start);
  if (seen === 0) throw new Error('no rows read');
  return ((used.user + used.system) / 1e6) * (100_000 / rows);
}

/** better-sqlite3's way of running a statement: all rows at once, or one by one. */
function betterSqlite(statement: Database.Statement, iterate: boolean): (after: number) => number {
  if (!iterate) return (after) => statement.all(after).length;
  return (after) => {
    let n = 0;
    for (const _ of statement.iterate(after)) n++;
    return n;
  };
}

const dir = mkdtempSync(join(tmpdir(), 'edge-sqlite-read-'));
try {
  const path = join(dir, 'rows.db');
  makeReadingsTable(path, rows);
  const db = openSqlite(path, { readonly: true });
  const readers = Object.entries(WAYS).map(([name, way]) => ({ name, read: betterSqlite(db.prepare(way.text), way.iterate === true) }));
  // Node's built-in SQLite, for comparison: the same statements, rows as objects or as arrays.
  const builtin = new DatabaseSync(path, { readOnly: true });
  const asArrays = builtin.prepare(WAYS['rows, all() (today, second step)']!.text);
  asArrays.setReturnArrays(true);
  const asObjects = builtin.prepare(WAYS['rows, all() (today, second step)']!.text);
  const totals = builtin.prepare(WAYS['size totals (today, first step)']!.text);
  readers.push(
    { name: 'node:sqlite size totals', read: (after) => totals.all(after).length },
    { name: 'node:sqlite rows, all()', read: (after) => asObjects.all(after).length },
    { name: 'node:sqlite rows as arrays, all()', read: (after) => asArrays.all(after).length },
  );
  for (const r of readers) once(r.read); // warm-up
  const runs = new Map<string, number[]>(readers.map((r) => [r.name, []]));
  for (let i = 0; i < repeat; i++) for (const r of readers) runs.get(r.name)!.push(once(r.read));
  for (const [name, r] of runs) {
    const sorted = [...r].sort((a, b) => a - b);
    console.log(`${name.padEnd(40)} CPU-s per 100k rows ${sorted[Math.floor(sorted.length / 2)]!.toFixed(3)} (runs ${r.map((x) => x.toFixed(3)).join(', ')})`);
  }
  db.close();
  builtin.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
