import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openSqlite, z } from '../../agent/sdk/index.ts';
import { sqliteSyntax } from '../../drivers/sources/sqlite/dialect.ts';
import { readStatement, rowBytesStatement, sizeSumStatement, sizeTotalsStatement, sizesStatement } from '../../drivers/common/sql/statements.ts';
import { sqlCursorOptions } from '../../drivers/common/sql/options.ts';

// A (timestamp, id) cursor's reads must seek an index on (timestamp, id) to where the batch starts: written as
// an OR alone, SQLite read such an index from its first entry at every batch, so catching up a table of n rows
// read n²/batch_size entries. What SQLite plans for the statements is what this checks; the rows they return
// are checked against the real databases in db-sqlite, db-postgres and db-mysql.test.ts.

describe('SQL source: a (timestamp, id) cursor seeks its index', () => {
  it('the read, the sizes, the totals and the sum search the index on (ts, id) from the batch start, by both bounds', () => {
    const db = openSqlite(':memory:');
    db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY, ts TEXT, value REAL); CREATE INDEX readings_by_ts ON readings (ts, id)');
    const config = z.strictObject(sqlCursorOptions()).parse({ table: 'readings', timestamp_column: 'ts' });
    const after = { ts: '2026-12-07T09:00:00.000Z', id: 10 };
    const upTo = { ts: '2026-12-07T10:00:00.000Z', id: 5000 };
    const size = (quoted: string) => `octet_length(${quoted})`;
    const statements = {
      read: readStatement(config, sqliteSyntax, after, upTo, 1000),
      sizes: sizesStatement(config, sqliteSyntax, ['id', 'ts', 'value'], size, after, upTo, 1000),
      totals: sizeTotalsStatement(rowBytesStatement(config, sqliteSyntax, ['id', 'ts', 'value'], size, after, upTo, 1000)),
      sum: sizeSumStatement(rowBytesStatement(config, sqliteSyntax, ['id', 'ts', 'value'], size, after, upTo, 1000)),
      'first read': readStatement(config, sqliteSyntax, undefined, upTo, 1000),
    };
    const plans = Object.fromEntries(
      Object.entries(statements).map(([name, s]) => [
        name,
        (db.prepare(`EXPLAIN QUERY PLAN ${s.text}`).all(...s.values) as { detail: string }[]).map((r) => r.detail).join('; '),
      ]),
    );
    db.close();
    assert.deepEqual(plans, {
      read: 'SEARCH readings USING INDEX readings_by_ts (ts>? AND ts<?)',
      sizes: 'SEARCH readings USING INDEX readings_by_ts (ts>? AND ts<?)',
      totals: 'CO-ROUTINE edge_sizes; SEARCH readings USING INDEX readings_by_ts (ts>? AND ts<?); SCAN edge_sizes',
      sum: 'CO-ROUTINE edge_sizes; SEARCH readings USING INDEX readings_by_ts (ts>? AND ts<?); SCAN edge_sizes',
      'first read': 'SEARCH readings USING INDEX readings_by_ts (ts<?)',
    });
  });
});
