import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteSource } from '../../drivers/sources/sqlite/index.ts';
import { sourceContract } from '../contract/source-contract.ts';
import { asRecords, isAgentError, type PolledSource, type SourceDriver } from '../../agent/sdk/index.ts';
import { capturingLogger, pollUntil, polledSource, recordingContext } from '../helpers/db.ts';
import { problemReporter } from '../../agent/hosting/driver-env.ts';

const driver = sqliteSource as unknown as SourceDriver;
const dir = mkdtempSync(join(tmpdir(), 'edge-db-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A database file as another program would keep it: WAL mode, a readings table. */
function writerDb(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS readings (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, device TEXT, value REAL, payload TEXT)');
  return db;
}

describe('sqlite source: contract', () => {
  const path = join(dir, 'contract.db');
  before(() => {
    const db = writerDb(path);
    const insert = db.prepare("INSERT INTO readings (ts, device, value) VALUES ('2024-01-01T00:00:00Z', ?, ?)");
    db.transaction(() => {
      for (let i = 1; i <= 300; i++) insert.run(`dev-${i % 3}`, i / 10);
    })();
    db.close();
  });
  // The table's own `ts` is text and the contract wants the agent's numeric ts, so a query renames it. A poll
  // reads at most 20 rows so that the 300 rows last across the contract's stop and restart.
  sourceContract(driver, {
    options: { path, query: 'SELECT id, ts AS time, device, value FROM readings', batch_size: 10, max_rows_per_poll: 20 },
    identity: (r) => r.id as number,
  });
});

describe('sqlite source', () => {
  it('maps SQLite values: integers beyond 2^53 as BigInt, BLOB as bytes, NULL, REAL, text, json_columns parsed', async () => {
    const path = join(dir, 'types.db');
    const db = writerDb(path);
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER, small INTEGER, r REAL, s TEXT, b BLOB, j TEXT, bad TEXT, n TEXT)');
    db.prepare("INSERT INTO t VALUES (1, ?, 7, 1.25, 'héllo', x'00ff', '{\"a\":[1,2.5,null]}', '{not json', NULL)").run(9007199254740993n);
    db.close();
    const src = await polledSource(driver, { path, table: 't', json_columns: ['j', 'bad'] });
    const { ctx, emits, counts } = recordingContext();
    await src.gather(ctx);
    await src.close!();
    assert.equal(emits.length, 1);
    assert.deepEqual(emits[0]!.records, [
      { id: 1, big: 9007199254740993n, small: 7, r: 1.25, s: 'héllo', b: new Uint8Array([0, 255]), j: { a: [1, 2.5, null] }, bad: '{not json', n: null },
    ]);
    assert.equal(Object.getPrototypeOf(emits[0]!.records[0]!.b), Uint8Array.prototype, 'a plain Uint8Array, not a Buffer');
    assert.deepEqual(emits[0]!.cursor, { id: 1 });
    assert.equal(counts.get('json_invalid'), 1);
  });

  it('rows read after the writer adds a column carry it under its name', async () => {
    // Rows are read as arrays under the statement's column names; SQLite prepares `SELECT *` again when the
    // schema changes, so the names must follow, or values would go out under the old ones (or be cut off).
    const path = join(dir, 'altered.db');
    const db = writerDb(path);
    db.exec('CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT)');
    db.exec("INSERT INTO a VALUES (1, 'one')");
    const src = await polledSource(driver, { path, table: 'a' });
    const { ctx, records } = recordingContext();
    await src.gather(ctx);
    // The second poll prepares the statement the third one runs again, across the change.
    db.exec("INSERT INTO a VALUES (2, 'two')");
    await src.gather(ctx);
    db.exec("ALTER TABLE a ADD COLUMN y REAL; INSERT INTO a VALUES (3, 'three', 3.5)");
    await src.gather(ctx);
    await src.close!();
    db.close();
    assert.deepEqual(records(), [
      { id: 1, x: 'one' },
      { id: 2, x: 'two' },
      { id: 3, x: 'three', y: 3.5 },
    ]);
  });

  it('a column named like an array index goes out as an object of its row would have it: first', async () => {
    const path = join(dir, 'index-named.db');
    const db = writerDb(path);
    db.exec("CREATE TABLE d (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO d VALUES (1, 'a'), (2, 'b')");
    db.close();
    const src = await polledSource(driver, { path, query: 'SELECT id, v AS "7" FROM d' });
    const { ctx, records } = recordingContext();
    let rowsEmitted = 0;
    ctx.emitRows = async (rows, cursor) => {
      rowsEmitted++;
      await ctx.emit(asRecords(rows), cursor);
    };
    await src.gather(ctx);
    await src.close!();
    assert.equal(rowsEmitted, 0, 'not emitted as rows: their records would order the keys otherwise');
    assert.deepEqual(
      records().map((r) => Object.keys(r)),
      [
        ['7', 'id'],
        ['7', 'id'],
      ],
    );
    assert.deepEqual(records(), [
      { id: 1, 7: 'a' },
      { id: 2, 7: 'b' },
    ]);
  });

  it('ordinary columns go out as rows where the context takes them, as the same records', async () => {
    const path = join(dir, 'as-rows.db');
    const db = writerDb(path);
    db.exec("CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT, n REAL); INSERT INTO r VALUES (1, 'a', 1.5), (2, 'b', NULL)");
    db.close();
    const src = await polledSource(driver, { path, table: 'r' });
    const { ctx, records } = recordingContext();
    let rowsEmitted = 0;
    ctx.emitRows = async (rows, cursor) => {
      rowsEmitted++;
      assert.deepEqual(rows.columns, ['id', 'v', 'n']);
      await ctx.emit(asRecords(rows), cursor);
    };
    await src.gather(ctx);
    await src.close!();
    assert.equal(rowsEmitted, 1);
    assert.deepEqual(records(), [
      { id: 1, v: 'a', n: 1.5 },
      { id: 2, v: 'b', n: null },
    ]);
  });

  it('sizing a row far above max_row_bytes does not read it into memory (only its stored length)', async () => {
    // A cheaper size expression was tried that compared each value with '' to tell numbers apart: SQLite then
    // loaded every text and BLOB value whole to compare it, so a 96 MiB row grew the process by 96 MiB before
    // it was skipped. Measured in a process of its own: its peak RSS is not raised by earlier tests.
    const path = join(dir, 'huge.db');
    const db = writerDb(path);
    db.exec('CREATE TABLE h (id INTEGER PRIMARY KEY, note TEXT, b BLOB)');
    const insert = db.prepare('INSERT INTO h VALUES (?, ?, ?)');
    insert.run(1, 'small', Buffer.alloc(10, 1));
    insert.run(2, 'huge', Buffer.alloc(96 * 1024 * 1024, 2));
    insert.run(3, 'small', Buffer.alloc(10, 3));
    db.close();
    const root = join(import.meta.dirname, '../..');
    const script = `
      const { sqliteSource } = await import(${JSON.stringify(join(root, 'drivers/sources/sqlite/index.ts'))});
      const { polledSource, recordingContext } = await import(${JSON.stringify(join(root, 'test/helpers/db.ts'))});
      const src = await polledSource(sqliteSource, { path: ${JSON.stringify(path)}, table: 'h', max_row_bytes: '1MiB' });
      const { ctx, counts, records } = recordingContext();
      const before = process.resourceUsage().maxRSS;
      await src.gather(ctx);
      await src.close();
      const grownKiB = process.resourceUsage().maxRSS - before;
      console.log(JSON.stringify({ grownKiB, ids: records().map((r) => r.id), skipped: counts.get('row_too_large') ?? 0 }));
    `;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`child exited with ${code}`))));
    });
    const result = JSON.parse(out.trim().split('\n').pop()!) as { grownKiB: number; ids: number[]; skipped: number };
    assert.deepEqual(result.ids, [1, 3], 'the rows around it are read');
    assert.equal(result.skipped, 1, 'the huge row is skipped and counted');
    assert.ok(result.grownKiB < 32 * 1024, `the peak RSS grew by ${result.grownKiB} KiB while sizing a 96 MiB row`);
  });

  it('reads every row exactly once while another process writes the file (WAL), across a restart from the committed cursor', async () => {
    const path = join(dir, 'live.db');
    writerDb(path).close();
    const total = 3000;
    // The writer: its own process and connection, committing 1–20 rows at a time as fast as it can. It writes
    // the first half, then waits for a byte on stdin before the rest, so the restart below happens while rows
    // are still being written however fast or slow this machine is today.
    const writer = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import Database from 'better-sqlite3';
         import { readSync } from 'node:fs';
         const db = new Database(${JSON.stringify(path)});
         db.pragma('journal_mode = WAL');
         db.pragma('busy_timeout = 5000');
         const insert = db.prepare('INSERT INTO readings (ts, device, value, payload) VALUES (?, ?, ?, ?)');
         let n = 0;
         let paused = false;
         while (n < ${total}) {
           if (!paused && n >= ${total / 2}) {
             paused = true;
             for (;;) { try { readSync(0, Buffer.alloc(1)); break; } catch (err) { if (err.code !== 'EAGAIN') throw err; } }
           }
           const k = Math.min(1 + (n % 20), ${total} - n);
           db.transaction(() => { for (let i = 0; i < k; i++) { n++; insert.run(new Date().toISOString(), 'dev-' + (n % 5), n / 7, JSON.stringify({ n })); } })();
         }
         db.close();
         process.stdout.write('done');`,
      ],
      { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const writerExit = new Promise<number | null>((resolve) => writer.on('exit', resolve));
    try {
      const options = { path, table: 'readings', batch_size: 100, json_columns: ['payload'] };
      const first = recordingContext();
      let src = await polledSource(driver, options);
      // Poll until a part has arrived, then "crash": a new source resumes from the committed cursor.
      await pollUntil(src, first.ctx, () => first.records().length >= total / 3, 'a third of the rows');
      await src.close!();
      writer.stdin!.write('+');
      const second = recordingContext(first.ctx.committed);
      src = await polledSource(driver, options);
      await pollUntil(src, second.ctx, () => first.records().length + second.records().length >= total, 'all rows', 30_000);
      await src.close!();
      assert.equal(await writerExit, 0, 'the writer finished cleanly');
      const ids = [...first.records(), ...second.records()].map((r) => r.id as number);
      assert.equal(ids.length, total);
      assert.deepEqual(
        ids,
        Array.from({ length: total }, (_, i) => i + 1),
        'every id once, in order',
      );
      assert.deepEqual(second.records().at(-1)!.payload, { n: total });
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('timestamp cursor: rows with equal timestamps are ordered and resumed by id', async () => {
    const path = join(dir, 'ts.db');
    const db = writerDb(path);
    db.exec('CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, v INTEGER)');
    // Ids out of time order, and ties on the timestamp.
    const insert = db.prepare('INSERT INTO events (id, at, v) VALUES (?, ?, ?)');
    for (const [id, at] of [
      [5, '2024-01-01T00:00:01'],
      [2, '2024-01-01T00:00:01'],
      [9, '2024-01-01T00:00:00'],
      [7, '2024-01-01T00:00:02'],
      [1, '2024-01-01T00:00:02'],
    ] as const)
      insert.run(id, at, id);
    const options = { path, table: 'events', timestamp_column: 'at', batch_size: 2 };
    const first = recordingContext();
    let src = await polledSource(driver, options);
    await src.gather(first.ctx);
    await src.close!();
    assert.deepEqual(
      first.records().map((r) => r.id),
      [9, 2, 5, 1, 7],
    );
    assert.deepEqual(first.ctx.committed, { id: 7, ts: '2024-01-01T00:00:02' });
    // New rows: one tying the last timestamp with a higher id, one later; one tying it with a lower id is behind the cursor.
    insert.run(4, '2024-01-01T00:00:02', 4);
    insert.run(8, '2024-01-01T00:00:02', 8);
    insert.run(3, '2024-01-01T00:00:03', 3);
    db.close();
    const second = recordingContext(first.ctx.committed);
    src = await polledSource(driver, options);
    await src.gather(second.ctx);
    await src.close!();
    assert.deepEqual(
      second.records().map((r) => r.id),
      [8, 3],
    );
  });

  it('a dropped table is a clear, retryable SOURCE_FAILED, counted; the source goes on once it is back', async () => {
    const path = join(dir, 'drop.db');
    const db = writerDb(path);
    db.prepare("INSERT INTO readings (ts, device, value) VALUES ('t', 'a', 1)").run();
    const src = await polledSource(driver, { path, table: 'readings' });
    const { ctx, counts, records } = recordingContext();
    await src.gather(ctx);
    db.exec('DROP TABLE readings');
    await assert.rejects(src.gather(ctx), (err) => {
      assert.ok(isAgentError(err, 'SOURCE_FAILED'));
      assert.equal(err.retryable, true);
      assert.match(err.message, new RegExp(`SQLite database ${path.replaceAll('/', '\\/')}: table readings does not exist`));
      return true;
    });
    assert.equal(counts.get('missing_table'), 1);
    db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, device TEXT, value REAL, payload TEXT)');
    db.prepare("INSERT INTO readings (id, ts, device, value) VALUES (2, 't', 'b', 2)").run();
    db.close();
    await src.gather(ctx);
    await src.close!();
    assert.deepEqual(
      records().map((r) => r.device),
      ['a', 'b'],
    );
  });

  it('a missing file is a retryable SOURCE_FAILED naming the file (the source never creates it)', async () => {
    const path = join(dir, 'nope', 'missing.db');
    const src = await polledSource(driver, { path, table: 'readings' });
    const { ctx, counts } = recordingContext();
    await assert.rejects(src.gather(ctx), (err) => isAgentError(err, 'SOURCE_FAILED') && err.retryable && err.message.includes(path));
    assert.equal(counts.get('open_errors'), 1);
  });

  it('start: end skips the rows present at the first poll and commits that point at once', async () => {
    const path = join(dir, 'end.db');
    const db = writerDb(path);
    const insert = db.prepare("INSERT INTO readings (ts, device, value) VALUES ('t', ?, 0)");
    insert.run('old-1');
    insert.run('old-2');
    const src = await polledSource(driver, { path, table: 'readings', start: 'end' });
    const { ctx, emits, records } = recordingContext();
    await src.gather(ctx);
    assert.deepEqual(emits, [{ records: [], cursor: { id: 2 } }]);
    insert.run('new-3');
    db.close();
    await src.gather(ctx);
    await src.close!();
    assert.deepEqual(
      records().map((r) => r.device),
      ['new-3'],
    );
  });

  /**
   * The source built as the runtime does: the driver's counters and problem reports are the context's, and
   * both log to `lines`.
   */
  async function sourceCountingInto(options: Record<string, unknown>, recording: ReturnType<typeof recordingContext>['ctx']) {
    const { log, lines } = capturingLogger();
    const ctx = { ...recording, problems: problemReporter(() => recording.counters, log) };
    const config = sqliteSource.options.parse(options);
    const common = { type: 'sqlite', name: 'db', stream: 'db', interval: 1000, on_start_error: 'retry' as const };
    const src = (await sqliteSource.create({ ...config, ...common }, { log, baseDir: dir, counters: ctx.counters, problems: ctx.problems })) as PolledSource;
    return { src, ctx, lines };
  }

  it('a file replaced by its writer (deleted and created again, or renamed over) is noticed at the next poll and reopened, logged, counted', async () => {
    const path = join(dir, 'replaced.db');
    const first = writerDb(path);
    first.prepare("INSERT INTO readings (id, ts, device, value) VALUES (1, 't', 'a', 1), (2, 't', 'b', 2)").run();
    first.close();
    const recording = recordingContext();
    const { counts, records } = recording;
    const { src, ctx, lines } = await sourceCountingInto({ path, table: 'readings' }, recording.ctx);
    await src.gather(ctx);
    assert.deepEqual(
      records().map((r) => r.device),
      ['a', 'b'],
    );
    // Deleted, then a new file at the same path, its ids going on from where the old one stopped.
    rmSync(path);
    rmSync(`${path}-wal`, { force: true });
    rmSync(`${path}-shm`, { force: true });
    const second = writerDb(path);
    second.prepare("INSERT INTO readings (id, ts, device, value) VALUES (3, 't', 'c', 3)").run();
    second.close();
    await src.gather(ctx);
    assert.deepEqual(
      records().map((r) => r.device),
      ['a', 'b', 'c'],
      'the new file is read, not the deleted inode the old handle still holds',
    );
    assert.equal(counts.get('file_replaced'), 1);
    assert.ok(lines.some((l) => l.includes('SQLite file was replaced; reopening it')));
    // Renamed over (the atomic way a writer swaps a file in).
    const next = join(dir, 'replaced-next.db');
    const third = writerDb(next);
    third.prepare("INSERT INTO readings (id, ts, device, value) VALUES (3, 't', 'c', 3), (4, 't', 'd', 4)").run();
    third.close();
    renameSync(next, path);
    await src.gather(ctx);
    assert.equal(counts.get('file_replaced'), 2);
    // Deleted and not back yet: a retryable failure each poll, until the file is there again.
    rmSync(path);
    await assert.rejects(src.gather(ctx), (err) => isAgentError(err, 'SOURCE_FAILED') && err.retryable === true && err.message.includes(path));
    assert.ok(lines.some((l) => l.includes('SQLite file was deleted')));
    const fourth = writerDb(path);
    fourth.prepare("INSERT INTO readings (id, ts, device, value) VALUES (5, 't', 'e', 5)").run();
    fourth.close();
    await src.gather(ctx);
    await src.close!();
    assert.deepEqual(
      records().map((r) => r.device),
      ['a', 'b', 'c', 'd', 'e'],
    );
  });

  it('a table whose rows are all behind the committed cursor (ids restarted) is reported, not passed over in silence', async () => {
    const path = join(dir, 'restarted.db');
    const db = writerDb(path);
    db.prepare("INSERT INTO readings (id, ts, device, value) VALUES (1, 't', 'new-1', 1)").run();
    db.close();
    const recording = recordingContext({ id: 50 });
    const { counts, emits } = recording;
    const { src, ctx, lines } = await sourceCountingInto({ path, table: 'readings' }, recording.ctx);
    await src.gather(ctx);
    await src.close!();
    assert.equal(emits.length, 0);
    assert.equal(counts.get('cursor_ahead'), 1);
    assert.ok(lines.some((l) => l.includes('behind the committed cursor') && l.includes('"highest":"{\\"id\\":1}"')));
  });

  it('rows with a NULL cursor value are skipped, counted and reported naming the table and column; later rows still come', async () => {
    const path = join(dir, 'nulls.db');
    const db = new Database(path);
    db.exec('CREATE TABLE t (id INTEGER, v TEXT)');
    db.exec("INSERT INTO t VALUES (1, 'a'), (NULL, 'lost'), (2, 'b')");
    const recording = recordingContext();
    const { counts, records } = recording;
    const { src, ctx, lines } = await sourceCountingInto({ path, table: 't' }, recording.ctx);
    await src.gather(ctx);
    db.exec("INSERT INTO t VALUES (3, 'c')");
    db.close();
    await src.gather(ctx);
    await src.close!();
    assert.deepEqual(
      records().map((r) => r.v),
      ['a', 'b', 'c'],
    );
    assert.equal(counts.get('null_cursor'), 1, 'counted at the first poll, then once a minute');
    assert.ok(lines.some((l) => l.includes('NULL cursor value') && l.includes('table t') && l.includes('"columns":"id"') && l.includes('"rows":1')));
  });

  it('rejects a config with both or neither of table and query', async () => {
    await assert.rejects(polledSource(driver, { path: 'x.db' }), /exactly one of table or query/);
    await assert.rejects(polledSource(driver, { path: 'x.db', table: 't', query: 'SELECT 1' }), /exactly one of table or query/);
  });
});
