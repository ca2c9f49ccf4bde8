import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { SqlPolledSource, type SqlDialect, type RowSize } from '../../drivers/common/sql/poller.ts';
import { SqliteDialect } from '../../drivers/sources/sqlite/dialect.ts';
import { openSqlite } from '../../agent/sdk/index.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../agent/log.ts';
import type { Position } from '../../drivers/common/sql/position.ts';
import { sqlCursorOptions } from '../../drivers/common/sql/options.ts';
import { z } from '../../agent/sdk/index.ts';
import { pollUntil, recordingContext } from '../helpers/db.ts';

// The poller against a table in memory, where a test can change the table between the sizes query and the
// read. (The real databases: db-*.test.ts, db-row-bytes.test.ts.)

interface Row {
  id: number;
  bytes: number;
}

function memoryDialect(rows: Row[]) {
  const calls = { sizes: 0, reads: 0 };
  const after = (p: Position | undefined) => (p === undefined ? 0 : Number(p.id));
  const range = (from: Position | undefined, upTo: Position, limit: number) =>
    rows.filter((r) => r.id > after(from) && r.id <= Number(upTo.id)).slice(0, limit);
  const dialect: SqlDialect<null> & { calls: typeof calls } = {
    calls,
    where: 'memory',
    connected: true,
    connect: async () => {},
    observe: async () => ({ max: rows.length === 0 ? undefined : { id: rows.at(-1)!.id }, fence: null, at: Date.now() }),
    settled: () => true,
    read: async (from, upTo, limit) => {
      calls.reads++;
      return range(from, upTo, limit).map((r) => ({ id: r.id, bytes: r.bytes }));
    },
    sizes: async (from, upTo, limit): Promise<RowSize[]> => {
      calls.sizes++;
      return range(from, upTo, limit).map((r) => ({ position: { id: r.id }, bytes: r.bytes }));
    },
    disconnect: async () => {},
    classify: (err) => ({ error: err as never, counter: 'errors', reconnect: false }),
    countNullCursor: async () => 0,
  };
  return dialect;
}

const config = (options: Record<string, unknown>) => z.strictObject(sqlCursorOptions()).parse({ table: 't', ...options });

/** A SQLite file in a directory of the test's own holding table `t` (`id` and one more column) with `rows`. */
function tableFile(t: TestContext, column: string, rows: Iterable<[number, unknown]>, options: { wal?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'edge-sql-fits-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'rows.db');
  const db = openSqlite(path, {});
  if (options.wal) db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, ${column})`);
  const insert = db.prepare('INSERT INTO t VALUES (?, ?)');
  db.transaction(() => {
    for (const [id, value] of rows) insert.run(id, value);
  })();
  db.close();
  return path;
}

/** `count` rows with ids from 1, each value made from its id. */
function* numbered(count: number, value: (id: number) => unknown): Iterable<[number, unknown]> {
  for (let id = 1; id <= count; id++) yield [id, value(id)];
}

/** The SQLite dialect over `path`, silent. */
const sqliteDialect = (path: string, options: ReturnType<typeof config>) =>
  new SqliteDialect(path, options, { log: silentLogger, counters: { add: () => {} } });

describe('SQL poller: sizes, then rows', () => {
  it('rows deleted between the sizes query and the read: the sizes are asked again, nothing is skipped or repeated', async () => {
    const rows = Array.from({ length: 600 }, (_, i) => ({ id: i + 1, bytes: 50 }));
    const dialect = memoryDialect(rows);
    const sizes = dialect.sizes;
    let deleted = false;
    dialect.sizes = async (from, upTo, limit) => {
      const result = await sizes(from, upTo, limit);
      if (!deleted) {
        deleted = true;
        // Rows 50–59 and 250 vanish after they were sized.
        for (let i = rows.length - 1; i >= 0; i--) if ((rows[i]!.id >= 50 && rows[i]!.id < 60) || rows[i]!.id === 250) rows.splice(i, 1);
      }
      return result;
    };
    const source = new SqlPolledSource(config({ batch_size: 100 }), dialect, 'table t');
    const { ctx, records } = recordingContext();
    await pollUntil(source, ctx, () => (ctx.committed as { id?: number } | undefined)?.id === 600, 'the last row');
    assert.deepEqual(
      records().map((r) => r.id),
      rows.map((r) => r.id),
      'every row still there, once, in order',
    );
  });

  it('SQLite reads a batch that fits whole, without per-row sizes; one that does not goes row by row within the bounds', async (t) => {
    // 600 rows of 50 B text, but row 250 above max_row_bytes and rows 400–405 of 1500 B (a batch of 100 holds
    // 5 KB of small rows, within max_batch_bytes; with them it does not fit).
    const sizeOf = (id: number) => (id === 250 ? 5000 : id >= 400 && id <= 405 ? 1500 : 50);
    const path = tableFile(
      t,
      'payload TEXT',
      numbered(600, (id) => 'x'.repeat(sizeOf(id))),
      { wal: true },
    );

    const options = config({ batch_size: 100, max_batch_bytes: 6000, max_row_bytes: 4000 });
    const dialect = sqliteDialect(path, options);
    const calls = { sizes: 0, whole: 0 };
    const sizes = dialect.sizes.bind(dialect);
    const readIfFits = dialect.readIfFits.bind(dialect);
    dialect.sizes = async (...a) => (calls.sizes++, sizes(...a));
    dialect.readIfFits = async (...a) => (calls.whole++, readIfFits(...a));
    const source = new SqlPolledSource(options, dialect, 'table t');
    const { ctx, emits, records } = recordingContext();
    await pollUntil(source, ctx, () => (ctx.committed as { id?: number } | undefined)?.id === 600, 'the last row');
    // Row by row, each read takes as many rows as fit: the count is a bound value, not part of the statement's
    // text, so the prepared statements kept (one per text) do not grow with every count seen: the maximum, the
    // NULL count, and the sum, totals, sizes and read for a first batch and for one after a cursor.
    const prepared = (dialect as unknown as { statements: Map<string, unknown> }).statements;
    assert.ok(prepared.size <= 10, `${prepared.size} statements prepared:\n${[...prepared.keys()].join('\n')}`);
    await source.close();

    const ids = records().map((r) => Number(r.id));
    assert.deepEqual(
      ids,
      Array.from({ length: 600 }, (_, i) => i + 1).filter((id) => id !== 250),
      'every row but the oversized one, once, in order',
    );
    for (const e of emits) {
      const bytes = e.records.reduce((n, r) => n + String(r.id).length + sizeOf(Number(r.id)), 0);
      assert.ok(e.records.length <= 1 || bytes <= 6000, `an emit of ${e.records.length} rows holds ${bytes} B, above max_batch_bytes`);
    }
    assert.ok(calls.whole >= 3, `batches read whole: ${calls.whole}`);
    // Rows 1–249 and the batch holding 250 (which does not fit) are the first poll's whole-batch reads; sizes
    // are asked from then on in that poll only.
    assert.ok(calls.sizes > 0, 'the batches that do not fit were sized row by row');
  });

  it('SQLite: a table of small rows is polled without the per-row sizes query', async (t) => {
    const path = tableFile(
      t,
      'v REAL',
      numbered(1000, (id) => id / 3),
    );
    const options = config({ batch_size: 300 });
    const dialect = sqliteDialect(path, options);
    let sized = 0;
    const sizes = dialect.sizes.bind(dialect);
    dialect.sizes = async (...a) => (sized++, sizes(...a));
    const source = new SqlPolledSource(options, dialect, 'table t');
    const { ctx, records } = recordingContext();
    await pollUntil(source, ctx, () => (ctx.committed as { id?: number } | undefined)?.id === 1000, 'the last row');
    await source.close();
    assert.equal(records().length, 1000);
    assert.equal(sized, 0, 'no per-row sizes query');
  });

  it('SQLite: rows whose sum passes max_row_bytes but none of them, and all within max_batch_bytes, are still read whole', async (t) => {
    // The sum alone is asked first; above max_row_bytes it cannot tell one large row from many small ones,
    // so the totals are asked: 3 rows of 1500 B (4500 B) under max_row_bytes 4000 and max_batch_bytes 6000 fit.
    const path = tableFile(
      t,
      'payload TEXT',
      numbered(30, () => 'y'.repeat(1500)),
    );
    const options = config({ batch_size: 3, max_batch_bytes: 6000, max_row_bytes: 4000 });
    const dialect = sqliteDialect(path, options);
    const calls = { sizes: 0, whole: 0, fitted: 0 };
    const sizes = dialect.sizes.bind(dialect);
    const readIfFits = dialect.readIfFits.bind(dialect);
    dialect.sizes = async (...a) => (calls.sizes++, sizes(...a));
    dialect.readIfFits = async (...a) => {
      calls.whole++;
      const fitting = await readIfFits(...a);
      if (fitting !== undefined && fitting.bytes > 0) calls.fitted++;
      return fitting;
    };
    const source = new SqlPolledSource(options, dialect, 'table t');
    const { ctx, emits, records } = recordingContext();
    await pollUntil(source, ctx, () => (ctx.committed as { id?: number } | undefined)?.id === 30, 'the last row');
    await source.close();
    assert.deepEqual(
      records().map((r) => Number(r.id)),
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    assert.equal(calls.sizes, 0, 'no batch went row by row');
    assert.equal(calls.fitted, 10, 'ten batches of three read whole');
    assert.ok(
      emits.every((e) => e.records.length === 3),
      `emits of ${emits.map((e) => e.records.length).join(', ')} rows`,
    );
  });
});
