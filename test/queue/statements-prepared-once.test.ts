import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { migrate } from '../../agent/queue/schema.ts';
import { prepareStatements } from '../../agent/queue/storage.ts';
import { sqliteSyntax } from '../../drivers/sources/sqlite/dialect.ts';
import { readStatement, rowBytesStatement, sizeSumStatement, sizeTotalsStatement, sizesStatement } from '../../drivers/common/sql/statements.ts';
import { sqlCursorOptions } from '../../drivers/common/sql/options.ts';
import { z } from '../../agent/sdk/index.ts';

// SQLite (3.54, as better-sqlite3 13 bundles it) prepares a statement again, parse and plan, on its first run
// after a new binding of a value the planner looked at: a LIMIT, or a `col = ?` before an ORDER BY the index
// gives. Every run binds, so such a statement was prepared again at every run. These tests count the prepares
// with the real addon: better-sqlite3 asks its row factory for a new row maker each time a statement it reads
// as objects has been prepared (again), so counting the factory's calls counts the prepares.

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3') as typeof BetterSqlite3;

/** A database whose addon counts the prepares of statements read as objects (the first Database in this process sets it up). */
function countingDatabase(): { db: BetterSqlite3.Database; prepares: () => number } {
  // The prebuilt addon better-sqlite3 itself loads (beside its lib/ folder).
  const addonPath = join(dirname(require.resolve('better-sqlite3')), '..', 'prebuilds', `${process.platform}-${process.arch}.node`);
  const real = require(addonPath) as { initialize: (...args: unknown[]) => unknown; isInitialized?: boolean };
  assert.ok(!real.isInitialized, 'the addon was initialised before this test could count (another Database in this process)');
  let count = 0;
  const counting = Object.create(real) as typeof real;
  // initialize(SqliteError, arrayFactory, arrayAppender, rowFactory, …): the row factory is the fourth.
  counting.initialize = (...args: unknown[]) => {
    const rows = args[3] as (...keys: string[]) => unknown;
    args[3] = (...keys: string[]) => (count++, rows(...keys));
    return real.initialize.apply(real, args);
  };
  const db = new Database(':memory:', { nativeBinding: counting as never });
  return { db, prepares: () => count };
}

const { db, prepares } = countingDatabase();

/** How many times `statement` is prepared over runs with each set of values (each run must return a row). */
function preparesOver(statement: BetterSqlite3.Statement, runs: unknown[][]): number {
  const before = prepares();
  for (const values of runs) assert.ok(statement.all(...values).length > 0, `${statement.source} returned no row for ${JSON.stringify(values)}`);
  return prepares() - before;
}

describe('SQLite statements run again with new values are not prepared again', () => {
  it("the queue's reads: the planner's, the sender's and the bounds'", () => {
    migrate(db, () => randomBytes(16));
    const stmt = prepareStatements(db);
    const insert = db.prepare('INSERT INTO chunks (stream_id, count, created, codec, payload, cbor_bytes, crc32) VALUES (?, 1, 0, 0, ?, 1, 0)');
    db.transaction(() => {
      for (let i = 0; i < 200; i++) insert.run(1 + (i % 2), Buffer.alloc(8));
    })();
    // Stream 1 and 2 in turn, and ranges that move: what a queue with two streams asks at every batch.
    const runs = (make: (k: number) => unknown[]) => Array.from({ length: 6 }, (_, k) => make(k));
    const counts = {
      oldestCreated: preparesOver(
        stmt.oldestCreated,
        runs((k) => [1 + (k % 2)]),
      ),
      oldestChunk: preparesOver(
        stmt.oldestChunk,
        runs((k) => [1 + (k % 2)]),
      ),
      rangeSizes: preparesOver(
        stmt.rangeSizes,
        runs((k) => [1 + (k % 2), k * 10, k * 10 + 20]),
      ),
      chunksBetween: preparesOver(
        stmt.chunksBetween,
        runs((k) => [1 + (k % 2), k * 10, k * 10 + 50, 3 + k]),
      ),
      newestAfter: preparesOver(
        stmt.newestAfter,
        runs((k) => [1 + (k % 2), k * 10, 3 + k]),
      ),
      payloads: preparesOver(
        stmt.payloads,
        runs((k) => [1 + (k % 2), k * 10, k * 10 + 20]),
      ),
    };
    assert.deepEqual(counts, { oldestCreated: 1, oldestChunk: 1, rangeSizes: 1, chunksBetween: 1, newestAfter: 1, payloads: 1 });
  });

  it("the SQLite source's reads, sizes, totals and sums, by id and by (timestamp, id)", () => {
    db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY, ts INTEGER, sensor TEXT, value REAL); CREATE INDEX readings_by_ts ON readings (ts, id)');
    const insert = db.prepare('INSERT INTO readings VALUES (?, ?, ?, ?)');
    db.transaction(() => {
      for (let id = 1; id <= 500; id++) insert.run(id, 1_700_000_000_000 + id, `sensor-${id % 7}`, id / 3);
    })();
    const sizeOf = (quoted: string) => `octet_length(${quoted})`;
    const columns = ['id', 'ts', 'sensor', 'value'];
    const counts: Record<string, number> = {};
    for (const cursor of [{ table: 'readings' }, { table: 'readings', timestamp_column: 'ts' }]) {
      const config = z.strictObject(sqlCursorOptions()).parse(cursor);
      const position = (id: number) => ({ id, ...(cursor.timestamp_column ? { ts: 1_700_000_000_000 + id } : {}) });
      // Each batch reads after the last one, up to a maximum that grows, as many rows as fit: every value moves.
      const batches = Array.from({ length: 6 }, (_, k) => ({ after: position(k * 50), upTo: position(400 + k), limit: 20 + k }));
      const statement = (make: (b: (typeof batches)[number]) => { text: string; values: unknown[] }) => {
        const texts = new Set(batches.map((b) => make(b).text));
        assert.equal(texts.size, 1, 'one statement text for every batch');
        return preparesOver(
          db.prepare([...texts][0]!),
          batches.map((b) => make(b).values),
        );
      };
      const by = cursor.timestamp_column ? 'by (ts, id)' : 'by id';
      counts[`read ${by}`] = statement((b) => readStatement(config, sqliteSyntax, b.after, b.upTo, b.limit));
      counts[`sizes ${by}`] = statement((b) => sizesStatement(config, sqliteSyntax, columns, sizeOf, b.after, b.upTo, b.limit));
      const rowBytes = (b: (typeof batches)[number]) => rowBytesStatement(config, sqliteSyntax, columns, sizeOf, b.after, b.upTo, b.limit);
      counts[`totals ${by}`] = statement((b) => sizeTotalsStatement(rowBytes(b)));
      counts[`sum ${by}`] = statement((b) => sizeSumStatement(rowBytes(b)));
    }
    assert.deepEqual(counts, {
      'read by id': 1,
      'sizes by id': 1,
      'totals by id': 1,
      'sum by id': 1,
      'read by (ts, id)': 1,
      'sizes by (ts, id)': 1,
      'totals by (ts, id)': 1,
      'sum by (ts, id)': 1,
    });
  });
});
