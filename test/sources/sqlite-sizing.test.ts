import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { SourceDriver } from '../../agent/sdk/index.ts';
import { sqliteSource } from '../../drivers/sources/sqlite/index.ts';
import { columnSize, columnSizings } from '../../drivers/sources/sqlite/sizing.ts';
import { pollUntil, polledSource, recordingContext } from '../helpers/db.ts';

// The SQLite source sizes numbers by their type rather than by formatting them, and skips sizing altogether
// for columns the schema says hold only numbers. SQLite stores whatever is written in an ordinary table's
// INTEGER or REAL column when it does not look like a number, so large text and BLOBs hidden there must
// still be measured: a row above max_row_bytes is never fetched, whichever column holds the bytes.

function withDatabase(run: (db: Database.Database, path: string) => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-sqlite-sizing-'));
  const path = join(dir, 'sizing.db');
  const db = new Database(path);
  return Promise.resolve(run(db, path)).finally(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
}

function sizingsOf(db: Database.Database, table: string | undefined, from: string): Record<string, string> {
  return Object.fromEntries(columnSizings(db, db.prepare(`SELECT * FROM ${from} LIMIT 0`), table));
}

describe('sqlite source: sizing rows by the schema', () => {
  it('picks the sizing of each column from its declared type, its table being STRICT and the rowid', () =>
    withDatabase((db) => {
      db.exec(`
        CREATE TABLE plain (id INTEGER PRIMARY KEY, ts INTEGER, sensor TEXT, v REAL, code VARCHAR(8), loose, n NUMERIC, b BLOB, point_count POINT);
        CREATE TABLE strict (id INTEGER PRIMARY KEY, r REAL, i INT, t TEXT, a ANY) STRICT;
        CREATE TABLE keyed (id INTEGER PRIMARY KEY, v REAL) WITHOUT ROWID;
        CREATE TABLE intkey (id INT PRIMARY KEY, v REAL);
        CREATE VIEW recent AS SELECT id, sensor FROM plain;`);
      assert.deepEqual(sizingsOf(db, 'plain', 'plain'), {
        id: 'number',
        ts: 'any',
        sensor: 'text',
        v: 'any',
        code: 'text',
        loose: 'any',
        n: 'any',
        b: 'any',
        point_count: 'any',
      });
      assert.deepEqual(sizingsOf(db, 'main.strict', 'main.strict'), { id: 'number', r: 'number', i: 'number', t: 'text', a: 'any' });
      // INTEGER PRIMARY KEY is the rowid only in a rowid table; "INT PRIMARY KEY" never is.
      assert.deepEqual(sizingsOf(db, 'keyed', 'keyed'), { id: 'any', v: 'any' });
      assert.deepEqual(sizingsOf(db, 'intkey', 'intkey'), { id: 'any', v: 'any' });
      // A view or a query: nothing assumed beyond each column's declared type.
      assert.deepEqual(sizingsOf(db, 'recent', 'recent'), { id: 'any', sensor: 'text' });
      assert.deepEqual(sizingsOf(db, undefined, '(SELECT id, sensor, v * 2 AS twice FROM plain)'), { id: 'any', sensor: 'text', twice: 'any' });
    }));

  it('sizes a value of any type in a column of any affinity or collation: numbers 8, text and BLOBs by length, NULL 0', () =>
    withDatabase((db) => {
      db.exec('CREATE TABLE t (n NUMERIC COLLATE NOCASE, r REAL COLLATE RTRIM, loose)');
      const insert = db.prepare('INSERT INTO t VALUES (?, ?, ?)');
      insert.run(42, 1.5, 'héllo');
      insert.run('abc', 'text in a real', Buffer.from([1, 2]));
      insert.run(null, null, null);
      insert.run('', '   ', '12');
      insert.run(2n ** 62n, -0.0, 1e308);
      const types = db.prepare('SELECT typeof(n) || typeof(r) || typeof(loose) FROM t ORDER BY rowid').pluck().all();
      assert.deepEqual(types, ['integerrealtext', 'texttextblob', 'nullnullnull', 'texttexttext', 'integerrealreal'], 'what SQLite stored');
      const size = (c: string) => `COALESCE(${columnSize('any', `"${c}"`)}, 0) AS ${c}`;
      const sizes = db.prepare(`SELECT ${size('n')}, ${size('r')}, ${size('loose')} FROM t ORDER BY rowid`).all();
      assert.deepEqual(sizes, [
        { n: 8, r: 8, loose: 6 },
        { n: 3, r: 14, loose: 2 },
        { n: 0, r: 0, loose: 0 },
        { n: 0, r: 3, loose: 2 },
        { n: 8, r: 8, loose: 8 },
      ]);
    }));

  it('never fetches a row whose bytes hide in a REAL, INTEGER or untyped column, and bounds each read', () =>
    withDatabase(async (db, path) => {
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY, ts INTEGER, v REAL, loose, note TEXT)');
      const insert = db.prepare('INSERT INTO readings VALUES (?, ?, ?, ?, ?)');
      const big = (c: string) => c.repeat(700_000);
      const medium = (c: string) => c.repeat(100_000);
      // Oversized rows: text in the REAL column, a BLOB in the INTEGER column, text in the untyped one.
      const oversized = new Map<number, [unknown, unknown, unknown, unknown]>([
        [4, [1, big('x'), null, 'a']],
        [9, [Buffer.alloc(700_000, 1), 2.5, null, 'b']],
        [13, [3, 3.5, big('y'), 'c']],
      ]);
      db.transaction(() => {
        for (let id = 1; id <= 20; id++) {
          // Ordinary rows carry 100 kB of text in the REAL column: three of them fill max_batch_bytes.
          insert.run(id, ...(oversized.get(id) ?? [1767225600000 + id, medium('z'), id, `row ${id}`]));
        }
      })();
      assert.equal(db.prepare('SELECT typeof(v) FROM readings WHERE id = 1').pluck().get(), 'text', 'SQLite kept the text in the REAL column');

      const src = await polledSource(sqliteSource as unknown as SourceDriver, {
        path,
        table: 'readings',
        batch_size: 1000,
        max_batch_bytes: 350_000,
        max_row_bytes: '512KiB',
      });
      const { ctx, emits, counts, records } = recordingContext();
      try {
        await pollUntil(src, ctx, () => (ctx.committed as { id?: unknown } | undefined)?.id === 20, 'the cursor at the last row');
      } finally {
        await src.close!();
      }
      assert.deepEqual(
        records().map((r) => r.id),
        Array.from({ length: 20 }, (_, i) => i + 1).filter((id) => !oversized.has(id)),
        'every other row once, in order',
      );
      assert.equal(counts.get('row_too_large'), oversized.size, 'each oversized row counted');
      for (const emit of emits) {
        const bytes = emit.records.reduce((sum, r) => sum + String(r.v).length, 0);
        assert.ok(bytes <= 350_000, `one read fetched ${bytes} bytes of text from the REAL column (${emit.records.length} rows), over max_batch_bytes`);
      }
    }));
});
