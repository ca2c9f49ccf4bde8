import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SqlPolledSource, type SqlDialect, type RowSize } from '../../drivers/common/sql/poller.ts';
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
});
