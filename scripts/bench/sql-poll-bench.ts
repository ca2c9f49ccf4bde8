/**
 * CPU of the SQLite source's polling alone (no queue, no sink): the rows of a table of 120-byte readings
 * (the cpu-bench's `sqlite-120` table: id, ts, sensor, value, unit, status) read by `SqlPolledSource` into an
 * emit that resolves at once. Isolates what reading costs (the sizes query, the row query, the row objects),
 * which the end-to-end figure mixes with encoding, compression and delivery.
 *
 *   node scripts/bench/sql-poll-bench.ts [--rows 200000] [--repeat 5] [--batch-size 1000]
 *
 * Prints CPU seconds per 100k rows (process.cpuUsage around the polls), each run and the median.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqliteSource } from '../../drivers/sources/sqlite/index.ts';
import type { AgentRecord, Cursor, PolledSource, RecordRows, SourceContext } from '../../agent/sdk/index.ts';
import { silentLogger } from '../../agent/log.ts';
import { driverEnv, problemReporter } from '../../agent/hosting/driver-env.ts';
import { numberArg, parseArgs } from './proc.ts';
import { makeReadingsTable } from './readings-table.ts';

const args = parseArgs(process.argv.slice(2));
const rows = numberArg(args, 'rows', 200_000);
const repeat = numberArg(args, 'repeat', 5);
const batchSize = numberArg(args, 'batch-size', 1000);

async function once(path: string): Promise<number> {
  const config = sqliteSource.options.parse({ path, table: 'readings', batch_size: batchSize, max_rows_per_poll: rows });
  const common = { type: 'sqlite', name: 'bench', stream: 'bench', interval: 1000, on_start_error: 'retry' as const };
  const source = (await sqliteSource.create({ ...config, ...common } as never, driverEnv({ log: silentLogger, baseDir: process.cwd() }))) as PolledSource;
  let last = 0;
  let read = 0;
  const ctx: SourceContext = {
    name: 'bench',
    log: silentLogger,
    cursor: undefined,
    signal: new AbortController().signal,
    counters: { add: () => {} },
    problems: problemReporter(() => ctx.counters, silentLogger),
    emit: async (records: AgentRecord[], cursor?: Cursor) => {
      read += records.length;
      if (cursor !== undefined) last = Number((cursor as { id: number }).id);
    },
    // As the agent takes them: rows read as arrays stay arrays.
    emitRows: async (records: RecordRows, cursor?: Cursor) => {
      read += records.rows.length;
      if (cursor !== undefined) last = Number((cursor as { id: number }).id);
    },
    fail: (err) => {
      throw err;
    },
  };
  const start = process.cpuUsage();
  while (last < rows) await source.gather(ctx);
  const used = process.cpuUsage(start);
  await source.close?.();
  if (read !== rows) throw new Error(`read ${read} rows of ${rows}`);
  return ((used.user + used.system) / 1e6) * (100_000 / rows);
}

const dir = mkdtempSync(join(tmpdir(), 'edge-bench-sqlpoll-'));
try {
  const path = join(dir, 'rows120.db');
  makeReadingsTable(path, rows, { wal: true });
  const runs: number[] = [];
  for (let i = 0; i < repeat; i++) runs.push(await once(path));
  const sorted = [...runs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  process.stdout.write(
    `sqlite source polling, ${rows} rows of 120 B, batch_size ${batchSize}: CPU-s per 100k rows ${median.toFixed(3)} (runs ${runs.map((r) => r.toFixed(3)).join(', ')})\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
