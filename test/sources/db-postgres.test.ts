import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { postgresSource } from '../../drivers/sources/postgres/index.ts';
import { sourceContract } from '../contract/source-contract.ts';
import { isAgentError, type PolledSource, type SourceDriver } from '../../agent/sdk/index.ts';
import {
  capturingLogger,
  createPostgresDatabase,
  freshName,
  pgClient,
  pollUntil,
  polledSource,
  postgresUnavailable,
  recordingContext,
  PG,
  type TestDatabase,
} from '../helpers/db.ts';

const driver = postgresSource as unknown as SourceDriver;
const unavailable = await postgresUnavailable();
if (unavailable) console.log(`# skipping the PostgreSQL source tests: ${unavailable}`);

const name = freshName();
let db: TestDatabase | undefined;
let admin: pg.Client;
const base = { host: PG.host, port: PG.port, user: PG.user, database: name };

before(async () => {
  if (unavailable) return;
  db = await createPostgresDatabase(name);
  admin = await pgClient(name);
  await admin.query(`CREATE TABLE readings (id bigserial PRIMARY KEY, ts timestamptz NOT NULL DEFAULT now(), device text, value numeric, payload jsonb)`);
  await admin.query(
    `INSERT INTO readings (device, value, payload) SELECT 'dev-' || (n % 4), n * 1.5, jsonb_build_object('n', n) FROM generate_series(1, 300) n`,
  );
});
after(async () => {
  await admin?.end();
  await db?.drop();
});

/** The backend pid of the source's connection, found by its application name and the query it ran last. */
async function sourceBackends(): Promise<number[]> {
  const { rows } = await admin.query(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'edge-agent'`, [name]);
  return rows.map((r: { pid: number }) => r.pid);
}

describe('postgres source: contract', { skip: unavailable }, () => {
  // The table's `ts` is the row's time; the contract checks the agent's numeric ts, so a query renames it.
  sourceContract(driver, {
    options: { ...base, query: 'SELECT id, ts AS time, device, value, payload FROM readings', batch_size: 10, max_rows_per_poll: 20 },
    identity: (r) => r.id as number,
  });
});

// Reads wait until every write transaction in the snapshot has ended, and transaction ids are cluster-wide: a
// test in another database holding one open delays these reads. So tests poll until rows settle, never one gather.
describe('postgres source', { skip: unavailable }, () => {
  it('maps PostgreSQL types faithfully (zones, numeric, int8, bytea, json, arrays, intervals, uuids, NULL)', async () => {
    await admin.query(`CREATE TABLE types (
      id int8 PRIMARY KEY, tz timestamptz, naive timestamp, d date, num numeric, big int8, small int8, i4 int4, f8 float8,
      b bytea, j json, jb jsonb, iv interval, u uuid, ok boolean, nums int8[], tzs timestamptz[], t text, nothing text)`);
    await admin.query(`INSERT INTO types VALUES (1, '2024-03-01 12:34:56.789123+02', '2024-03-01 12:34:56.789123', '2024-03-01',
      12345678901234567890.123456789, 9223372036854775807, -42, 7, 0.1, '\\x00ff10', '{"a":1}', '{"b":[1,"x",null]}',
      '1 year 2 months 3 days 04:05:06.5', '0b6e7a2c-52d6-4b3f-9f5e-6a7d8c9e0f11', true, '{1,9007199254740993}',
      '{"2024-01-01 00:00:00+00"}', 'héllo', NULL)`);
    const src = await polledSource(driver, { ...base, table: 'types' });
    const { ctx, records } = recordingContext();
    await pollUntil(src, ctx, () => records().length >= 1, 'the row');
    await src.close!();
    assert.deepEqual(records(), [
      {
        id: 1,
        tz: '2024-03-01T10:34:56.789123Z',
        naive: '2024-03-01T12:34:56.789123',
        d: '2024-03-01',
        num: '12345678901234567890.123456789',
        big: 9223372036854775807n,
        small: -42,
        i4: 7,
        f8: 0.1,
        b: new Uint8Array([0, 255, 16]),
        j: { a: 1 },
        jb: { b: [1, 'x', null] },
        iv: 'P1Y2M3DT4H5M6.5S',
        u: '0b6e7a2c-52d6-4b3f-9f5e-6a7d8c9e0f11',
        ok: true,
        nums: [1, 9007199254740993n],
        tzs: ['2024-01-01T00:00:00Z'],
        t: 'héllo',
        nothing: null,
      },
    ]);
  });

  it('a row whose transaction commits after a higher id is emitted exactly once (two real concurrent transactions)', async () => {
    await admin.query('CREATE TABLE late (id bigserial PRIMARY KEY, v text)');
    await admin.query(`INSERT INTO late (v) VALUES ('a'), ('b')`);
    const src = await polledSource(driver, { ...base, table: 'late' });
    const { ctx, records } = recordingContext();
    await pollUntil(src, ctx, () => records().length >= 2, 'the first two rows');
    assert.deepEqual(
      records().map((r) => r.v),
      ['a', 'b'],
    );
    const t1 = await pgClient(name);
    const t2 = await pgClient(name);
    try {
      await t1.query('BEGIN');
      const lateId = (await t1.query(`INSERT INTO late (v) VALUES ('late') RETURNING id`)).rows[0].id as string;
      const earlyId = (await t2.query(`INSERT INTO late (v) VALUES ('early') RETURNING id`)).rows[0].id as string; // autocommit
      assert.ok(Number(earlyId) > Number(lateId));
      // The higher id is visible, the lower one is not yet: a naive cursor would move past the lower id here.
      await src.gather(ctx);
      await src.gather(ctx);
      assert.deepEqual(
        records().map((r) => r.v),
        ['a', 'b'],
        'nothing is read past a transaction still open',
      );
      await t1.query('COMMIT');
      await pollUntil(src, ctx, () => records().length >= 4, 'the late and the early row');
      await src.gather(ctx);
      assert.deepEqual(
        records().map((r) => r.v),
        ['a', 'b', 'late', 'early'],
      );
      assert.deepEqual(ctx.committed, { id: Number(earlyId) });
    } finally {
      await t1.end();
      await t2.end();
      await src.close!();
    }
  });

  it('the same holds for a (timestamp, id) cursor; a read-only open transaction does not hold the source back', async () => {
    await admin.query('CREATE TABLE late_ts (id bigserial PRIMARY KEY, at timestamptz NOT NULL, v text)');
    const src = await polledSource(driver, { ...base, table: 'late_ts', timestamp_column: 'at' });
    const { ctx, records } = recordingContext();
    const t1 = await pgClient(name);
    const t2 = await pgClient(name);
    const reader = await pgClient(name);
    try {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await reader.query('SELECT count(*) FROM late_ts');
      await t1.query('BEGIN');
      await t1.query(`INSERT INTO late_ts (at, v) VALUES ('2024-01-01 00:00:01+00', 'late')`);
      await t2.query(`INSERT INTO late_ts (at, v) VALUES ('2024-01-01 00:00:02+00', 'early')`);
      await src.gather(ctx);
      assert.deepEqual(records(), []);
      await t1.query('COMMIT');
      await pollUntil(src, ctx, () => records().length >= 2, 'both rows');
      assert.deepEqual(
        records().map((r) => r.v),
        ['late', 'early'],
      );
      assert.deepEqual(ctx.committed, { id: 2, ts: '2024-01-01T00:00:02Z' });
      await t2.query(`INSERT INTO late_ts (at, v) VALUES ('2024-01-01 00:00:02+00', 'tie')`);
      await pollUntil(src, ctx, () => records().length >= 3, 'the row tying the timestamp');
      assert.deepEqual(
        records().map((r) => r.v),
        ['late', 'early', 'tie'],
      );
    } finally {
      await reader.query('ROLLBACK');
      for (const c of [t1, t2, reader]) await c.end();
      await src.close!();
    }
  });

  it('a terminated connection is a retryable SOURCE_FAILED, counted; the next poll reconnects and loses nothing', async () => {
    await admin.query('CREATE TABLE lost (id bigserial PRIMARY KEY, v int)');
    await admin.query('INSERT INTO lost (v) SELECT generate_series(1, 10)');
    const src = await polledSource(driver, { ...base, table: 'lost' });
    const { ctx, counts, records } = recordingContext();
    await pollUntil(src, ctx, () => records().length >= 10, 'the first ten rows');
    assert.equal(records().length, 10);
    const pids = await sourceBackends();
    assert.equal(pids.length, 1);
    await admin.query('SELECT pg_terminate_backend($1)', [pids[0]]);
    await admin.query('INSERT INTO lost (v) SELECT generate_series(11, 20)');
    let failure: unknown;
    // The termination reaches the idle client as an 'error' event or the next query as an error: either way
    // one poll fails clearly, or the client had already noticed and the poll simply reconnects.
    try {
      await src.gather(ctx);
    } catch (err) {
      failure = err;
    }
    if (failure !== undefined) {
      assert.ok(isAgentError(failure, 'SOURCE_FAILED'), String(failure));
      assert.equal(failure.retryable, true);
      assert.match(failure.message, new RegExp(`PostgreSQL database ${name} at 127.0.0.1:5432: connection lost`));
      assert.equal(counts.get('connection_errors'), 1);
    }
    await pollUntil(src, ctx, () => records().length >= 20, 'the rows after the reconnect');
    await src.close!();
    assert.equal(counts.get('connects'), 2, 'one reconnect');
    assert.deepEqual(
      records().map((r) => r.v),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
  });

  it('query_timeout cancels a slow query on the server: a retryable SOURCE_FAILED naming it, counted', async () => {
    const src = await polledSource(driver, { ...base, query: 'SELECT id, v FROM lost WHERE pg_sleep(0.3) IS NOT NULL', query_timeout: '100ms' });
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

    await admin.query('CREATE TABLE nullable_ts (id bigserial PRIMARY KEY, at timestamptz, v text)');
    await admin.query("INSERT INTO nullable_ts (at, v) VALUES ('2024-01-01T00:00:00Z', 'a'), (NULL, 'lost'), ('2024-01-01T00:00:01Z', 'b')");
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
    await admin.query('CREATE TABLE dropped (id bigserial PRIMARY KEY, v int)');
    await admin.query('INSERT INTO dropped (v) VALUES (1)');
    const src = await polledSource(driver, { ...base, table: 'dropped' });
    const { ctx, counts, records } = recordingContext();
    await pollUntil(src, ctx, () => records().length >= 1, 'the first row');
    await admin.query('DROP TABLE dropped');
    await assert.rejects(src.gather(ctx), (err) => {
      assert.ok(isAgentError(err, 'SOURCE_FAILED'));
      assert.equal(err.retryable, true);
      assert.match(err.message, new RegExp(`PostgreSQL database ${name} at 127.0.0.1:5432: table dropped does not exist`));
      return true;
    });
    assert.equal(counts.get('missing_table'), 1);
    await admin.query('CREATE TABLE dropped (id bigserial PRIMARY KEY, v int)');
    await admin.query('INSERT INTO dropped (id, v) VALUES (2, 2)');
    await pollUntil(src, ctx, () => records().length >= 2, 'the row after the table is back');
    await src.close!();
    assert.deepEqual(
      records().map((r) => r.v),
      [1, 2],
    );
  });

  it('credentials: password_file and password_env are read at connect and never appear in errors or logs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-db-pg-'));
    const secret = `s3cret-${freshName()}`;
    try {
      writeFileSync(join(dir, 'pw'), `${secret}\n`);
      const { log, lines } = capturingLogger();
      // Trust authentication accepts any password: this proves the file is read and the password not leaked.
      let src: PolledSource = await polledSource(driver, { ...base, table: 'readings', password_file: 'pw', max_rows_per_poll: 1 }, { baseDir: dir, log });
      const ok = recordingContext();
      await src.gather(ok.ctx);
      await src.close!();
      assert.equal(ok.records().length, 1);
      // A refused connection (nothing listens on port 1) with the password from the environment.
      process.env.EDGE_TEST_PG_PASSWORD = secret;
      src = await polledSource(
        driver,
        { ...base, port: 1, table: 'readings', password_env: 'EDGE_TEST_PG_PASSWORD', connect_timeout: '2s' },
        { baseDir: dir, log },
      );
      const refused = recordingContext();
      const err = await src.gather(refused.ctx).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isAgentError(err, 'SOURCE_FAILED') && err.retryable, String(err));
      assert.match(err.message, /PostgreSQL database edge_test_\w+ at 127\.0\.0\.1:1: connection lost or refused/);
      const missing = await polledSource(driver, { ...base, table: 'readings', password_env: 'EDGE_TEST_NO_SUCH_VARIABLE' }, { baseDir: dir, log });
      await assert.rejects(missing.gather(recordingContext().ctx), /environment variable EDGE_TEST_NO_SUCH_VARIABLE \(password_env\) is not set/);
      const text = [...lines, String(err), JSON.stringify(err, Object.getOwnPropertyNames(err))].join('\n');
      assert.ok(!text.includes(secret), 'the password appears nowhere');
    } finally {
      delete process.env.EDGE_TEST_PG_PASSWORD;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
