import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteSource } from '../../drivers/sources/sqlite/index.ts';
import { postgresSource } from '../../drivers/sources/postgres/index.ts';
import { mysqlSource } from '../../drivers/sources/mysql/index.ts';
import type { SourceDriver } from '../../agent/sdk/index.ts';
import {
  PG,
  MARIADB,
  createMariadbDatabase,
  createPostgresDatabase,
  mariadbConnection,
  mariadbUnavailable,
  pgClient,
  pollUntil,
  polledSource,
  postgresUnavailable,
  recordingContext,
  type TestDatabase,
} from '../helpers/db.ts';

// Rows with real BLOBs: what one read fetches is bounded in bytes (max_batch_bytes), and a row above
// max_row_bytes is never fetched: it is counted and the cursor moves past it. Checked by what each read
// emitted, not by the process's memory.

const ROWS = 30;
/** Ids whose BLOB is over max_row_bytes. */
const OVERSIZED = new Set([7, 19]);
const blobBytes = (id: number) => (OVERSIZED.has(id) ? 700_000 : 100_000);
const OPTIONS = { table: 'blobs', batch_size: 1000, max_batch_bytes: 350_000, max_row_bytes: '512KiB' };

function blob(id: number): Buffer {
  return Buffer.alloc(blobBytes(id), id);
}

/** The same checks for every database: bounded emits, oversized rows skipped and counted, nothing else lost. */
async function readAndCheck(driver: SourceDriver, options: Record<string, unknown>): Promise<void> {
  const src = await polledSource(driver, { ...OPTIONS, ...options });
  const { ctx, emits, counts, records } = recordingContext();
  try {
    await pollUntil(src, ctx, () => (ctx.committed as { id?: unknown } | undefined)?.id === ROWS, 'the cursor at the last row');
  } finally {
    await src.close!();
  }
  for (const emit of emits) {
    const bytes = emit.records.reduce((sum, r) => sum + (r.b as Uint8Array).byteLength, 0);
    assert.ok(bytes <= 350_000, `one read fetched ${bytes} bytes of BLOBs (${emit.records.length} rows), over max_batch_bytes`);
  }
  assert.deepEqual(
    records().map((r) => r.id),
    Array.from({ length: ROWS }, (_, i) => i + 1).filter((id) => !OVERSIZED.has(id)),
    'every other row once, in order',
  );
  for (const r of records()) assert.equal((r.b as Uint8Array).byteLength, blobBytes(r.id as number));
  assert.equal(counts.get('row_too_large'), OVERSIZED.size, 'each skipped row counted');
  assert.deepEqual(
    emits.filter((e) => e.records.length === 0).map((e) => e.cursor),
    [...OVERSIZED].map((id) => ({ id })),
    'the cursor is committed past each skipped row',
  );
  assert.ok(emits.length >= 10, `28 rows of 100 kB in reads of at most 3 (got ${emits.length} emits)`);
}

describe('SQL sources: max_batch_bytes and max_row_bytes with BLOB rows', () => {
  it('SQLite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-db-bytes-'));
    try {
      const path = join(dir, 'blobs.db');
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, note TEXT, b BLOB)');
      const insert = db.prepare('INSERT INTO blobs VALUES (?, ?, ?)');
      db.transaction(() => {
        for (let id = 1; id <= ROWS; id++) insert.run(id, `row ${id}`, blob(id));
      })();
      db.close();
      await readAndCheck(sqliteSource as unknown as SourceDriver, { path });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('PostgreSQL', () => {
    let database: TestDatabase | undefined;
    let skip: string | undefined;
    before(async () => {
      skip = await postgresUnavailable();
      if (skip) return;
      database = await createPostgresDatabase();
      const client = await pgClient(database.name);
      try {
        await client.query('CREATE TABLE blobs (id bigint PRIMARY KEY, note text, b bytea)');
        for (let id = 1; id <= ROWS; id++) await client.query('INSERT INTO blobs VALUES ($1, $2, $3)', [id, `row ${id}`, blob(id)]);
      } finally {
        await client.end();
      }
    });
    after(() => database?.drop());
    it('bytea rows', async (t) => {
      if (skip) return t.skip(skip);
      await readAndCheck(postgresSource as unknown as SourceDriver, { ...PG, database: database!.name });
    });
  });

  describe('MariaDB', () => {
    let database: TestDatabase | undefined;
    let skip: string | undefined;
    before(async () => {
      skip = await mariadbUnavailable();
      if (skip) return;
      database = await createMariadbDatabase();
      const conn = await mariadbConnection(database.name);
      try {
        await conn.query('CREATE TABLE blobs (id BIGINT PRIMARY KEY, note TEXT, b LONGBLOB)');
        for (let id = 1; id <= ROWS; id++) await conn.query('INSERT INTO blobs VALUES (?, ?, ?)', [id, `row ${id}`, blob(id)]);
      } finally {
        await conn.end();
      }
    });
    after(() => database?.drop());
    it('LONGBLOB rows', async (t) => {
      if (skip) return t.skip(skip);
      await readAndCheck(mysqlSource as unknown as SourceDriver, { ...MARIADB, database: database!.name });
    });
  });
});
