/**
 * Rows/s and this process's CPU for one 10k-row poll of each SQL source (realistic row: id, ts, device,
 * value numeric, payload JSON), against the real servers on 127.0.0.1 (PostgreSQL :5432 user postgres,
 * MariaDB :3306 root) and a SQLite file. The source is connected (its first poll saw an empty table), then
 * the rows are inserted and one poll reads them all, in queries of 1000 rows. The database server's own CPU
 * is not included; emits go to a recording context, not to the queue.
 *   node scripts/bench/db-bench.ts [rows=10000] [runs=5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteSource } from '../../drivers/sources/sqlite/index.ts';
import { postgresSource } from '../../drivers/sources/postgres/index.ts';
import { mysqlSource } from '../../drivers/sources/mysql/index.ts';
import type { SourceDriver } from '../../agent/sdk/index.ts';
import {
  createMariadbDatabase,
  createPostgresDatabase,
  mariadbConnection,
  mariadbUnavailable,
  pgClient,
  polledSource,
  postgresUnavailable,
  recordingContext,
  MARIADB,
  PG,
} from '../../test/helpers/db.ts';

const ROWS = Number(process.argv[2] ?? 10_000);
const RUNS = Number(process.argv[3] ?? 5);

/** Table set-up for one run: `empty` leaves the table with no rows, `fill` adds ROWS of them. */
interface Table {
  empty(): Promise<void>;
  fill(): Promise<void>;
}

async function measure(label: string, driver: SourceDriver, options: Record<string, unknown>, table: Table): Promise<void> {
  const results: { ms: number; cpu: number }[] = [];
  for (let run = 0; run < RUNS; run++) {
    await table.empty();
    const src = await polledSource(driver, { ...options, batch_size: 1000, max_rows_per_poll: ROWS });
    const { ctx, records } = recordingContext();
    await src.gather(ctx); // connects; the table is empty
    await table.fill();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await src.gather(ctx);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    await src.close?.();
    if (records().length !== ROWS) throw new Error(`${label}: read ${records().length} of ${ROWS} rows`);
    results.push({ ms, cpu: (cpu.user + cpu.system) / 1000 });
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ms = median(results.map((r) => r.ms));
  const cpu = median(results.map((r) => r.cpu));
  console.log(
    `${label.padEnd(10)} ${String(Math.round((ROWS / ms) * 1000)).padStart(8)} rows/s   ${ms.toFixed(1).padStart(7)} ms wall   ${cpu.toFixed(1).padStart(7)} ms CPU   per ${ROWS}-row poll (median of ${RUNS})`,
  );
}

const dir = mkdtempSync(join(tmpdir(), 'edge-db-bench-'));
try {
  const path = join(dir, 'bench.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, device TEXT, value TEXT, payload TEXT)');
  const insert = db.prepare('INSERT INTO readings (ts, device, value, payload) VALUES (?, ?, ?, ?)');
  const fillSqlite = db.transaction(() => {
    for (let i = 1; i <= ROWS; i++)
      insert.run(
        new Date(1_700_000_000_000 + i * 1000).toISOString(),
        `dev-${i % 16}`,
        (i * 0.125).toFixed(3),
        JSON.stringify({ seq: i, ok: true, temp: 21.5 }),
      );
  });
  await measure(
    'sqlite',
    sqliteSource as unknown as SourceDriver,
    { path, table: 'readings', json_columns: ['payload'] },
    {
      empty: async () => void db.exec('DELETE FROM readings'),
      fill: async () => void fillSqlite(),
    },
  );
  db.close();

  const pgDown = await postgresUnavailable();
  if (pgDown) console.log(`postgres   skipped: ${pgDown}`);
  else {
    const pgdb = await createPostgresDatabase();
    try {
      const c = await pgClient(pgdb.name);
      await c.query('CREATE TABLE readings (id bigserial PRIMARY KEY, ts timestamptz NOT NULL, device text, value numeric, payload jsonb)');
      await measure(
        'postgres',
        postgresSource as unknown as SourceDriver,
        { ...PG, database: pgdb.name, table: 'readings' },
        {
          empty: async () => void (await c.query('TRUNCATE readings')),
          fill: async () =>
            void (await c.query(
              `INSERT INTO readings (ts, device, value, payload) SELECT to_timestamp(1700000000 + n), 'dev-' || (n % 16), n * 0.125, jsonb_build_object('seq', n, 'ok', true, 'temp', 21.5) FROM generate_series(1, $1::int) n`,
              [ROWS],
            )),
        },
      );
      await c.end();
    } finally {
      await pgdb.drop();
    }
  }

  const myDown = await mariadbUnavailable();
  if (myDown) console.log(`mysql      skipped: ${myDown}`);
  else {
    const mydb = await createMariadbDatabase();
    try {
      const c = await mariadbConnection(mydb.name);
      await c.query(
        'CREATE TABLE readings (id bigint AUTO_INCREMENT PRIMARY KEY, ts timestamp(6) NOT NULL, device varchar(32), value decimal(20,6), payload json)',
      );
      const rows = Array.from({ length: ROWS }, (_, k) => [
        new Date(1_700_000_000_000 + k * 1000).toISOString().slice(0, 23).replace('T', ' '),
        `dev-${k % 16}`,
        (k * 0.125).toFixed(3),
        JSON.stringify({ seq: k, ok: true, temp: 21.5 }),
      ]);
      await measure(
        'mysql',
        mysqlSource as unknown as SourceDriver,
        { ...MARIADB, database: mydb.name, table: 'readings' },
        {
          empty: async () => void (await c.query('TRUNCATE readings')),
          fill: async () => {
            for (let i = 0; i < rows.length; i += 2000) await c.query('INSERT INTO readings (ts, device, value, payload) VALUES ?', [rows.slice(i, i + 2000)]);
          },
        },
      );
      await c.end();
    } finally {
      await mydb.drop();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
