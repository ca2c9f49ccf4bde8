import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SqlPolledSource, type SqlDialect, type RowSize } from '../../drivers/common/sql/poller.ts';
import type { Position } from '../../drivers/common/sql/position.ts';
import { sqlCursorOptions } from '../../drivers/common/sql/options.ts';
import { z } from '../../agent/sdk/index.ts';
import { pollUntil, recordingContext } from '../helpers/db.ts';

// The poller against a table in memory: how often it asks for sizes, and that rows fetched stay bounded in
// rows and bytes when one sizes query covers several batches. (The real databases: db-*.test.ts, db-row-bytes.)

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

describe('SQL poller: sizes for several batches at once', () => {
  it('one sizes query covers up to 8 batches; every row once, in order, each read within batch_size and max_batch_bytes', async () => {
    const rows = Array.from({ length: 2000 }, (_, i) => ({ id: i + 1, bytes: 100 + (i % 7) * 10 }));
    const dialect = memoryDialect(rows);
    const source = new SqlPolledSource(config({ batch_size: 100, max_batch_bytes: 9_000 }), dialect, 'table t');
    const { ctx, emits, records } = recordingContext();
    await pollUntil(source, ctx, () => (ctx.committed as { id?: number } | undefined)?.id === 2000, 'the last row');
    assert.deepEqual(
      records().map((r) => r.id),
      rows.map((r) => r.id),
    );
    for (const emit of emits) {
      assert.ok(emit.records.length <= 100, `${emit.records.length} rows in one read`);
      const bytes = emit.records.reduce((sum, r) => sum + (r.bytes as number), 0);
      assert.ok(bytes <= 9_000, `${bytes} bytes in one read`);
    }
    // 2000 rows in reads of ≤ 100 rows (≈ 70 by bytes): ≥ 20 reads, and 2000 / 800 → 3 sizes queries (+ 1 that finds none).
    assert.ok(dialect.calls.reads >= 20, `${dialect.calls.reads} reads`);
    assert.ok(dialect.calls.sizes <= 4, `${dialect.calls.sizes} sizes queries for ${dialect.calls.reads} reads`);
  });

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
});
