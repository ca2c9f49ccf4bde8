import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { mysqlSource } from '../../drivers/sources/mysql/index.ts';
import { sourceContract } from '../contract/source-contract.ts';
import { isAgentError, type SourceDriver } from '../../agent/sdk/index.ts';
import {
  capturingLogger,
  createMariadbDatabase,
  freshName,
  mariadbConnection,
  mariadbUnavailable,
  pollUntil,
  polledSource,
  recordingContext,
  MARIADB,
  type TestDatabase,
} from '../helpers/db.ts';

const driver = mysqlSource as unknown as SourceDriver;
const unavailable = await mariadbUnavailable();
if (unavailable) console.log(`# skipping the MariaDB/MySQL source tests: ${unavailable}`);

const name = freshName();
let db: TestDatabase | undefined;
let admin: mysql.Connection;
const base = { host: MARIADB.host, port: MARIADB.port, user: MARIADB.user, database: name };

before(async () => {
  if (unavailable) return;
  db = await createMariadbDatabase(name);
  admin = await mariadbConnection(name);
  await admin.query(
    `CREATE TABLE readings (id bigint AUTO_INCREMENT PRIMARY KEY, ts timestamp(6) NOT NULL DEFAULT current_timestamp(6), device varchar(32), value decimal(20,6), payload json)`,
  );
  const rows = Array.from({ length: 300 }, (_, i) => [`dev-${i % 4}`, (i * 1.5).toFixed(1), JSON.stringify({ n: i + 1 })]);
  await admin.query('INSERT INTO readings (device, value, payload) VALUES ?', [rows]);
});
after(async () => {
  await admin?.end();
  await db?.drop();
});

describe('mysql source: contract', { skip: unavailable }, () => {
  // The table's `ts` is the row's time; the contract checks the agent's numeric ts, so a query renames it.
  sourceContract(driver, {
    options: { ...base, query: 'SELECT id, ts AS time, device, value, payload FROM readings', batch_size: 10, max_rows_per_poll: 20 },
    identity: (r) => r.id as number,
  });
});

describe('mysql source', { skip: unavailable }, () => {
  it('maps MariaDB/MySQL types faithfully (TIMESTAMP vs DATETIME, DECIMAL, BIGINT, binary, JSON, NULL)', async () => {
    await admin.query(`CREATE TABLE types (id bigint PRIMARY KEY, ts timestamp(6) NULL, dt datetime(6), d date, num decimal(30,9), big bigint,
      ubig bigint unsigned, small int, f double, vb varbinary(8), bl blob, j json, t text, tm time, nothing varchar(4))`);
    await admin.query(`SET time_zone = '+02:00'`);
    await admin.query(`INSERT INTO types VALUES (1, '2024-03-01 12:34:56.789123', '2024-03-01 12:34:56.789123', '2024-03-01', 12345678901234567890.123456789,
      9223372036854775807, 18446744073709551615, -42, 0.1, x'00ff10', x'0102', '{"b":[1,"x",null]}', 'héllo', '12:34:56', NULL)`);
    await admin.query(`SET time_zone = SYSTEM`);
    const src = await polledSource(driver, { ...base, table: 'types' });
    const { ctx, records } = recordingContext();
    await src.gather(ctx);
    await src.close!();
    assert.deepEqual(records(), [
      {
        id: 1,
        ts: '2024-03-01T10:34:56.789123Z',
        dt: '2024-03-01T12:34:56.789123',
        d: '2024-03-01',
        num: '12345678901234567890.123456789',
        big: 9223372036854775807n,
        ubig: 18446744073709551615n,
        small: -42,
        f: 0.1,
        vb: new Uint8Array([0, 255, 16]),
        bl: new Uint8Array([1, 2]),
        j: { b: [1, 'x', null] },
        t: 'héllo',
        tm: '12:34:56',
        nothing: null,
      },
    ]);
  });

  it('a row whose transaction commits after a higher id is emitted exactly once (two real concurrent transactions)', async () => {
    await admin.query('CREATE TABLE late (id bigint AUTO_INCREMENT PRIMARY KEY, v varchar(10))');
    await admin.query(`INSERT INTO late (v) VALUES ('a'), ('b')`);
    const src = await polledSource(driver, { ...base, table: 'late' });
    const { ctx, records } = recordingContext();
    await src.gather(ctx);
    assert.deepEqual(
      records().map((r) => r.v),
      ['a', 'b'],
    );
    const t1 = await mariadbConnection(name);
    const t2 = await mariadbConnection(name);
    try {
      await t1.beginTransaction();
      const [r1] = await t1.query(`INSERT INTO late (v) VALUES ('late')`);
      const [r2] = await t2.query(`INSERT INTO late (v) VALUES ('early')`); // autocommit
      const lateId = (r1 as mysql.ResultSetHeader).insertId;
      const earlyId = (r2 as mysql.ResultSetHeader).insertId;
      assert.ok(earlyId > lateId);
      await src.gather(ctx);
      await src.gather(ctx);
      assert.deepEqual(
        records().map((r) => r.v),
        ['a', 'b'],
        'nothing is read past a transaction still open',
      );
      await t1.commit();
      await pollUntil(src, ctx, () => records().length >= 4, 'the late and the early row');
      await src.gather(ctx);
      assert.deepEqual(
        records().map((r) => r.v),
        ['a', 'b', 'late', 'early'],
      );
      assert.deepEqual(ctx.committed, { id: earlyId });
    } finally {
      await t1.end();
      await t2.end();
      await src.close!();
    }
  });

  it('without the PROCESS privilege: password_file login, late_commit_lag holds rows back and the late row still arrives once', async () => {
    const user = `edge_${freshName().slice(-10)}`;
    const secret = `pw-${freshName()}`;
    const dir = mkdtempSync(join(tmpdir(), 'edge-db-my-'));
    await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${secret}'`);
    await admin.query(`GRANT SELECT ON ${name}.* TO '${user}'@'%'`);
    await admin.query('CREATE TABLE lagged (id bigint AUTO_INCREMENT PRIMARY KEY, v varchar(10))');
    const t1 = await mariadbConnection(name);
    try {
      writeFileSync(join(dir, 'pw'), `${secret}\n`);
      const { log, lines } = capturingLogger();
      const src = await polledSource(driver, { ...base, user, password_file: 'pw', table: 'lagged', late_commit_lag: '400ms' }, { baseDir: dir, log });
      const { ctx, records } = recordingContext();
      await t1.beginTransaction();
      await t1.query(`INSERT INTO lagged (v) VALUES ('late')`);
      await admin.query(`INSERT INTO lagged (v) VALUES ('early')`);
      const started = Date.now();
      await src.gather(ctx);
      assert.deepEqual(records(), [], 'a fresh maximum waits for late_commit_lag');
      await t1.commit();
      await pollUntil(src, ctx, () => records().length >= 2, 'both rows after the lag');
      assert.ok(Date.now() - started >= 400, 'not before the lag');
      assert.deepEqual(
        records().map((r) => r.v),
        ['late', 'early'],
      );
      await src.close!();
      assert.ok(
        lines.some((l) => l.includes('grant PROCESS')),
        'the fallback is logged',
      );
      // A wrong password: a clear, retryable error that does not carry the password.
      writeFileSync(join(dir, 'pw'), 'wrong\n');
      const denied = await polledSource(driver, { ...base, user, password_file: 'pw', table: 'lagged' }, { baseDir: dir, log });
      const err = await denied.gather(recordingContext().ctx).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isAgentError(err, 'SOURCE_FAILED') && err.retryable, String(err));
      assert.match(err.message, new RegExp(`MariaDB/MySQL database ${name} at 127.0.0.1:3306: access denied for user ${user}`));
      assert.ok(![...lines, String(err)].join('\n').includes(secret), 'the password appears nowhere');
    } finally {
      await t1.end();
      await admin.query(`DROP USER '${user}'@'%'`);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a killed connection is a retryable SOURCE_FAILED, counted; the next poll reconnects and loses nothing', async () => {
    await admin.query('CREATE TABLE lost (id bigint AUTO_INCREMENT PRIMARY KEY, v int)');
    await admin.query('INSERT INTO lost (v) VALUES (1),(2),(3),(4),(5)');
    const connectionIds = async () => {
      const [procs] = await admin.query('SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() AND db = ?', [name]);
      return new Set((procs as { id: number }[]).map((p) => Number(p.id)));
    };
    const before = await connectionIds();
    const src = await polledSource(driver, { ...base, table: 'lost' });
    const { ctx, counts, records } = recordingContext();
    try {
      await src.gather(ctx);
      // The source's connection: the one that appeared with its first poll.
      const ids = [...(await connectionIds())].filter((id) => !before.has(id));
      assert.equal(ids.length, 1, 'one new connection: the source');
      await admin.query(`KILL ${ids[0]}`);
      await admin.query('INSERT INTO lost (v) VALUES (6),(7),(8),(9),(10)');
      // The kill reaches the idle connection as an 'error' event or the next query as an error: either way
      // one poll fails clearly, or the connection was already forgotten and the poll simply reconnects.
      const failure = await src.gather(ctx).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (failure !== undefined) {
        assert.ok(isAgentError(failure, 'SOURCE_FAILED'), String(failure));
        assert.equal(failure.retryable, true);
        assert.match(failure.message, new RegExp(`MariaDB/MySQL database ${name} at 127.0.0.1:3306: connection lost`));
        assert.equal(counts.get('connection_errors'), 1);
      }
      await pollUntil(src, ctx, () => records().length >= 10, 'the rows after the reconnect');
      assert.equal(counts.get('connects'), 2, 'one reconnect');
      assert.deepEqual(
        records().map((r) => r.v),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
    } finally {
      await src.close!();
    }
  });

  it('query_timeout cancels a slow query on the server: a retryable SOURCE_FAILED naming it, counted', async () => {
    const src = await polledSource(driver, { ...base, query: 'SELECT id, v FROM lost WHERE SLEEP(0.3) = 0', query_timeout: '100ms' });
    const { ctx, counts } = recordingContext();
    await assert.rejects(src.gather(ctx), (err) => {
      assert.ok(isAgentError(err, 'SOURCE_FAILED'));
      assert.equal(err.retryable, true);
      assert.match(err.message, /query on the configured query cancelled after query_timeout \(100 ms\)/);
      return true;
    });
    await src.close!();
    assert.equal(counts.get('query_timeouts'), 1);
  });

  it('rows with a NULL cursor value (id, or timestamp) are skipped and counted; the rows after them still come', async () => {
    await admin.query('CREATE TABLE nullable_id (id bigint, v text)');
    await admin.query("INSERT INTO nullable_id VALUES (1, 'a'), (NULL, 'lost'), (2, 'b')");
    const src = await polledSource(driver, { ...base, table: 'nullable_id' });
    const { ctx, counts, records } = recordingContext();
    await pollUntil(src, ctx, () => records().length >= 2, 'the rows with an id');
    await admin.query("INSERT INTO nullable_id VALUES (3, 'c')");
    await pollUntil(src, ctx, () => records().length >= 3, 'a row inserted after the NULL one');
    await src.close!();
    assert.deepEqual(
      records().map((r) => r.v),
      ['a', 'b', 'c'],
    );
    assert.equal(counts.get('null_cursor'), 1, 'counted at the first poll, then once a minute');

    await admin.query('CREATE TABLE nullable_ts (id bigint AUTO_INCREMENT PRIMARY KEY, at datetime(6) NULL, v text)');
    await admin.query("INSERT INTO nullable_ts (at, v) VALUES ('2024-01-01 00:00:00', 'a'), (NULL, 'lost'), ('2024-01-01 00:00:01', 'b')");
    const byTime = await polledSource(driver, { ...base, table: 'nullable_ts', timestamp_column: 'at' });
    const t = recordingContext();
    await pollUntil(byTime, t.ctx, () => t.records().length >= 2, 'the rows with a timestamp');
    await byTime.close!();
    assert.deepEqual(
      t.records().map((r) => r.v),
      ['a', 'b'],
    );
    assert.equal(t.counts.get('null_cursor'), 1);
  });

  it('a dropped table is a retryable SOURCE_FAILED naming database and table; polling resumes once it is back', async () => {
    await admin.query('CREATE TABLE dropped (id bigint AUTO_INCREMENT PRIMARY KEY, v int)');
    await admin.query('INSERT INTO dropped (v) VALUES (1)');
    const src = await polledSource(driver, { ...base, table: 'dropped' });
    const { ctx, counts, records } = recordingContext();
    await src.gather(ctx);
    await admin.query('DROP TABLE dropped');
    await assert.rejects(src.gather(ctx), (err) => {
      assert.ok(isAgentError(err, 'SOURCE_FAILED'));
      assert.equal(err.retryable, true);
      assert.match(err.message, new RegExp(`MariaDB/MySQL database ${name} at 127.0.0.1:3306: table dropped does not exist`));
      return true;
    });
    assert.equal(counts.get('missing_table'), 1);
    await admin.query('CREATE TABLE dropped (id bigint AUTO_INCREMENT PRIMARY KEY, v int)');
    await admin.query('INSERT INTO dropped (id, v) VALUES (2, 2)');
    await src.gather(ctx);
    await src.close!();
    assert.deepEqual(
      records().map((r) => r.v),
      [1, 2],
    );
  });

  it('timestamp cursor over DATETIME(6): ties resume by id', async () => {
    await admin.query('CREATE TABLE ev (id bigint PRIMARY KEY, at datetime(6) NOT NULL, v int)');
    await admin.query(`INSERT INTO ev VALUES (5, '2024-01-01 00:00:01.5', 5), (2, '2024-01-01 00:00:01.5', 2), (9, '2024-01-01 00:00:00', 9)`);
    const src = await polledSource(driver, { ...base, table: 'ev', timestamp_column: 'at', batch_size: 2 });
    const { ctx, records } = recordingContext();
    await src.gather(ctx);
    assert.deepEqual(
      records().map((r) => r.id),
      [9, 2, 5],
    );
    assert.deepEqual(ctx.committed, { id: 5, ts: '2024-01-01T00:00:01.500000' });
    await admin.query(`INSERT INTO ev VALUES (3, '2024-01-01 00:00:01.5', 3), (7, '2024-01-01 00:00:01.5', 7), (1, '2024-01-01 00:00:02', 1)`);
    await src.gather(ctx);
    await src.close!();
    assert.deepEqual(
      records().map((r) => r.id),
      [9, 2, 5, 7, 1],
    );
  });
});
