/**
 * SQLite's own work to size and read the cpu-bench's `sqlite-120` table (id INTEGER PRIMARY KEY, ts INTEGER,
 * sensor TEXT, value REAL, unit TEXT, status TEXT: realistic 120 B rows), meant to run under callgrind with
 * only `sqlite3_step` counted, so the figure is SQLite's instructions per row whatever the machine's load:
 *
 *   valgrind --tool=callgrind --toggle-collect=sqlite3_step --callgrind-out-file=/dev/null \
 *     node scripts/bench/sqlite-sizing-bench.ts [--mode dialect] [--rows 100000]
 *
 * Divide "Collected" by --rows. --mode:
 * - `dialect`: batches of 1000 read as the SQLite source reads them (its dialect's `readIfFits`: totals, then rows);
 * - `totals-octet`, `totals-rowid`, `totals-typeof`, `totals-none`: the totals statement alone, each column sized
 *   by `octet_length`; the rowid as a constant; also the INTEGER and REAL columns by `typeof`; nothing sized;
 * - `rows`, `rows-raw`: `SELECT *` alone, rows as objects or as arrays (better-sqlite3's `raw`), counted whole
 *   (run without --toggle-collect, and take the difference between two --rows).
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqlite } from '../../agent/sdk/index.ts';
import type { SqlCursorConfig } from '../../drivers/common/sql/options.ts';
import { lastPosition, rowCount } from '../../drivers/common/sql/rows.ts';
import { SqliteDialect } from '../../drivers/sources/sqlite/dialect.ts';
import { numberArg, parseArgs } from './proc.ts';
import { makeReadingsTable } from './readings-table.ts';

const args = parseArgs(process.argv.slice(2));
const mode = args.get('mode') ?? 'dialect';
const rows = numberArg(args, 'rows', 100_000);
const BATCH = 1000;
const file = join(tmpdir(), 'edge-sqlite-sizing-bench-200k.db');
if (!existsSync(file)) makeReadingsTable(file, 200_000);
if (rows > 200_000) throw new Error('--rows: at most 200000 (the table made once in the temporary directory)');

const octet = (c: string) => `COALESCE(octet_length("${c}"), 0)`;
const byType = (c: string) => `COALESCE(CASE typeof("${c}") WHEN 'integer' THEN 8 WHEN 'real' THEN 8 ELSE octet_length("${c}") END, 0)`;
const TOTALS: Record<string, string> = {
  'totals-octet': ['id', 'ts', 'sensor', 'value', 'unit', 'status'].map(octet).join(' + '),
  'totals-rowid': ['8', ...['ts', 'sensor', 'value', 'unit', 'status'].map(octet)].join(' + '),
  'totals-typeof': ['8', byType('ts'), octet('sensor'), byType('value'), octet('unit'), octet('status')].join(' + '),
  'totals-none': '0',
};

let read = 0;
if (mode === 'dialect') {
  const config = {
    table: 'readings',
    id_column: 'id',
    batch_size: BATCH,
    max_rows_per_poll: rows,
    max_batch_bytes: 4 * 1024 * 1024,
    max_row_bytes: 1024 * 1024,
    json_columns: [],
    start: 'beginning',
    query_timeout: 30_000,
  } as unknown as SqlCursorConfig;
  const dialect = new SqliteDialect(file, config, { log: { warn() {} } as never, counters: { add() {} } });
  await dialect.connect();
  let after: { id: number } | undefined;
  for (;;) {
    const fitting = await dialect.readIfFits(after, { id: rows }, BATCH, config.max_row_bytes, config.max_batch_bytes);
    if (fitting === undefined) throw new Error('a batch did not fit: the table is not the benchmark one');
    const count = rowCount(fitting.rows);
    if (count === 0) break;
    read += count;
    after = lastPosition(fitting.rows, config, 'bench') as { id: number };
  }
  await dialect.disconnect();
} else {
  const db = openSqlite(file, { readonly: true });
  const range = 'FROM readings WHERE id > ? AND id <= ? ORDER BY id LIMIT ?';
  const size = TOTALS[mode];
  if (size !== undefined) {
    const totals = db.prepare(`SELECT COUNT(*) AS n, MAX(s) AS l, SUM(s) AS b FROM (SELECT ${size} AS s ${range})`);
    for (let after = 0; after < rows; after += BATCH) read += (totals.get(after, rows, BATCH) as { n: number }).n;
  } else if (mode === 'rows' || mode === 'rows-raw') {
    const select = db.prepare(`SELECT * ${range}`);
    if (mode === 'rows-raw') select.raw(true);
    for (let after = 0; after < rows; after += BATCH) read += select.all(after, rows, BATCH).length;
  } else throw new Error(`unknown mode ${mode}`);
  db.close();
}
console.log(`${mode}: ${read} rows`);
