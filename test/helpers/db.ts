import { randomBytes } from 'node:crypto';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { pino } from 'pino';
import { silentLogger } from '../../agent/log.ts';
import type { AgentRecord, Cursor, Logger, PolledSource, SourceContext, SourceDriver } from '../../agent/sdk/index.ts';
import { problemReporter, driverEnv } from '../../agent/hosting/driver-env.ts';

/** The real servers the database tests run against (CI provides them; see the preamble of each test). */
export const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' };
export const MARIADB = { host: '127.0.0.1', port: 3306, user: 'root' };

export interface TestDatabase {
  name: string;
  drop(): Promise<void>;
}

/** A database name no other run uses (known before the database exists, so contract options can name it). */
export function freshName(): string {
  return `edge_test_${randomBytes(5).toString('hex')}`;
}

/** Why the server cannot be used, or undefined when it answers (tests print the reason and skip). */
export async function postgresUnavailable(): Promise<string | undefined> {
  const client = new pg.Client({ ...PG, database: 'postgres', connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    return `PostgreSQL at ${PG.host}:${PG.port} is not reachable: ${(err as Error).message}`;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function mariadbUnavailable(): Promise<string | undefined> {
  try {
    const conn = await mysql.createConnection({ ...MARIADB, connectTimeout: 3000 });
    await conn.end();
    return undefined;
  } catch (err) {
    return `MariaDB at ${MARIADB.host}:${MARIADB.port} is not reachable: ${(err as Error).message}`;
  }
}

/** A new PostgreSQL database for one test run, dropped (with its connections) at the end. */
export async function createPostgresDatabase(name = freshName()): Promise<TestDatabase> {
  const admin = new pg.Client({ ...PG, database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    name,
    drop: async () => {
      const c = new pg.Client({ ...PG, database: 'postgres' });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export async function pgClient(database: string): Promise<pg.Client> {
  const client = new pg.Client({ ...PG, database });
  client.on('error', () => {}); // a test may terminate backends
  await client.connect();
  return client;
}

/** A new MariaDB database for one test run, dropped at the end. */
export async function createMariadbDatabase(name = freshName()): Promise<TestDatabase> {
  const admin = await mysql.createConnection(MARIADB);
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    name,
    drop: async () => {
      const c = await mysql.createConnection(MARIADB);
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name}`);
      } finally {
        await c.end();
      }
    },
  };
}

export async function mariadbConnection(database: string): Promise<mysql.Connection> {
  const conn = await mysql.createConnection({ ...MARIADB, database, supportBigNumbers: true, bigNumberStrings: true });
  conn.on('error', () => {}); // a test may kill connections
  return conn;
}

/** The SDK surface a polled source sees; emits are recorded and the cursor persisted as the queue would. */
export function recordingContext(cursor?: Cursor) {
  const emits: { records: AgentRecord[]; cursor: Cursor | undefined }[] = [];
  const counts = new Map<string, number>();
  const ctx: SourceContext & { committed: Cursor | undefined } = {
    name: 'db',
    log: silentLogger,
    cursor,
    committed: cursor,
    signal: new AbortController().signal,
    counters: { add: (name, n = 1) => void counts.set(name, (counts.get(name) ?? 0) + n) },
    problems: problemReporter(() => ctx.counters, silentLogger),
    emit: async (records, next) => {
      // A JSON round trip, as the queue stores cursors: a cursor that does not survive it fails here.
      const stored = next === undefined ? undefined : (JSON.parse(JSON.stringify(next)) as Cursor);
      emits.push({ records, cursor: stored });
      if (stored !== undefined) ctx.committed = stored;
    },
    fail: (err) => {
      throw new Error(`a polled source must not call fail: ${String(err)}`);
    },
  };
  return { ctx, emits, counts, records: () => emits.flatMap((e) => e.records) };
}

/** Builds a polled source through the driver's schema, so defaults apply as in a config file. */
export async function polledSource(
  driver: SourceDriver,
  options: Record<string, unknown>,
  env: { baseDir?: string; log?: Logger } = {},
): Promise<PolledSource> {
  const config = driver.options.parse(options) as Record<string, unknown>;
  const common = { type: driver.type, name: 'db', stream: 'db', interval: 1000, on_start_error: 'retry' as const };
  return (await driver.create(
    { ...config, ...common } as never,
    driverEnv({ log: env.log ?? silentLogger, baseDir: env.baseDir ?? process.cwd() }),
  )) as PolledSource;
}

/** A logger whose every line is kept as text, to check what is (and is not) logged. */
export function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  return { log, lines };
}

/** Polls until `done` holds, failing after a deadline; returns the number of polls. */
export async function pollUntil(source: PolledSource, ctx: SourceContext, done: () => boolean, what: string, deadlineMs = 15_000): Promise<number> {
  const until = Date.now() + deadlineMs;
  let polls = 0;
  while (!done()) {
    if (Date.now() > until) throw new Error(`timed out after ${polls} polls waiting for ${what}`);
    await source.gather(ctx);
    polls++;
    if (!done()) await new Promise((r) => setImmediate(r));
  }
  return polls;
}
