/**
 * The PostgreSQL output's tables and their migrations (docs/centre.md, "PostgreSQL"). Every receiver runs
 * them at start; an advisory lock per schema makes that safe when several start at once, and a version table
 * per records table makes a second run a no-op.
 *
 * Per records table `<t>` in schema `<s>`:
 * - `<t>`: one row per record: device, stream, epoch (16 hex digits), seq, idx (the record's place in its
 *   batch), time (the record's `ts`, when it has one), received_at, and the record as JSONB. The primary key
 *   is the record's identity, so even a bug elsewhere could not store a record twice.
 * - `<t>_batches`: the dedup marks, one per (device, stream, epoch, seq) taken.
 * - `<t>_epochs`: per (device, stream, epoch) the high-water mark, the newest creation time and when it was
 *   first and last seen: what the window and the pruning work from.
 * - `<t>_floors`: per (device, stream) the newest creation time of any forgotten epoch.
 * - `<t>_take(...)`: takes one batch in one statement (so in one transaction): the verdict, the mark and the
 *   records, or nothing.
 */
import type pg from 'pg';

export interface PostgresNames {
  schema: string;
  table: string;
}

/** `"schema"."name"`: names are checked identifiers (agent/config/centre-schema.ts), quoted all the same. */
export function qualified(names: PostgresNames, suffix = ''): string {
  return `"${names.schema}"."${names.table}${suffix}"`;
}

function takeFunction(n: PostgresNames): string {
  const t = qualified(n);
  const b = qualified(n, '_batches');
  const e = qualified(n, '_epochs');
  const f = qualified(n, '_floors');
  return `CREATE OR REPLACE FUNCTION ${qualified(n, '_take')}(p_device text, p_stream text, p_epoch text, p_seq bigint, p_count integer,
    p_created bigint, p_window bigint, p_epochs integer, p_streams integer, p_times double precision[], p_records jsonb)
  RETURNS text LANGUAGE plpgsql AS $take$
DECLARE
  v_high bigint;
  v_floor bigint;
  v_n integer;
  v_old text;
  v_old_created bigint;
BEGIN
  SELECT high INTO v_high FROM ${e} WHERE device = p_device AND stream = p_stream AND epoch = p_epoch FOR UPDATE;
  IF FOUND THEN
    IF p_seq <= v_high - p_window THEN RETURN 'stale'; END IF;
  ELSE
    SELECT created INTO v_floor FROM ${f} WHERE device = p_device AND stream = p_stream;
    IF FOUND AND p_created <= v_floor THEN RETURN 'stale'; END IF;
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM ${e} WHERE device = p_device AND stream = p_stream) THEN
      SELECT count(DISTINCT stream) INTO v_n FROM ${e} WHERE device = p_device;
      IF v_n >= p_streams THEN RETURN 'stream_limit'; END IF;
    END IF;
  END IF;
  -- The mark: a second receiver taking the same batch waits here for the first one's commit, then finds it.
  INSERT INTO ${b} (device, stream, epoch, seq, records, created) VALUES (p_device, p_stream, p_epoch, p_seq, p_count, p_created)
    ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN RETURN 'duplicate'; END IF;
  INSERT INTO ${e} AS x (device, stream, epoch, high, max_created) VALUES (p_device, p_stream, p_epoch, p_seq, p_created)
    ON CONFLICT (device, stream, epoch) DO UPDATE SET high = greatest(x.high, excluded.high), max_created = greatest(x.max_created, excluded.max_created), last_seen = now();
  IF v_high IS NULL THEN
    -- A new epoch: beyond p_epochs per stream the oldest is forgotten and raises the stream's floor.
    SELECT count(*) INTO v_n FROM ${e} WHERE device = p_device AND stream = p_stream;
    WHILE v_n > p_epochs LOOP
      SELECT epoch, max_created INTO v_old, v_old_created FROM ${e} WHERE device = p_device AND stream = p_stream ORDER BY first_seen, epoch LIMIT 1;
      INSERT INTO ${f} AS x (device, stream, created) VALUES (p_device, p_stream, v_old_created)
        ON CONFLICT (device, stream) DO UPDATE SET created = greatest(x.created, excluded.created);
      DELETE FROM ${b} WHERE device = p_device AND stream = p_stream AND epoch = v_old;
      DELETE FROM ${e} WHERE device = p_device AND stream = p_stream AND epoch = v_old;
      v_n := v_n - 1;
    END LOOP;
  END IF;
  INSERT INTO ${t} (device, stream, epoch, seq, idx, time, record)
    SELECT p_device, p_stream, p_epoch, p_seq, r.i - 1, CASE WHEN p_times[r.i] IS NULL THEN NULL ELSE to_timestamp(p_times[r.i] / 1000.0) END, r.v
    FROM jsonb_array_elements(p_records) WITH ORDINALITY AS r(v, i);
  RETURN 'new';
END
$take$`;
}

/** Migrations in order; version N is MIGRATIONS[N - 1]. Append only: a shipped one never changes. */
function migrations(n: PostgresNames): string[][] {
  const t = qualified(n);
  return [
    [
      `CREATE TABLE IF NOT EXISTS ${t} (device text NOT NULL, stream text NOT NULL, epoch text NOT NULL, seq bigint NOT NULL, idx integer NOT NULL,
         time timestamptz, received_at timestamptz NOT NULL DEFAULT now(), record jsonb NOT NULL, PRIMARY KEY (device, stream, epoch, seq, idx))`,
      `CREATE INDEX IF NOT EXISTS "${n.table}_time" ON ${t} (device, stream, time)`,
      `CREATE TABLE IF NOT EXISTS ${qualified(n, '_batches')} (device text NOT NULL, stream text NOT NULL, epoch text NOT NULL, seq bigint NOT NULL,
         records integer NOT NULL, created bigint NOT NULL, taken_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (device, stream, epoch, seq))`,
      `CREATE TABLE IF NOT EXISTS ${qualified(n, '_epochs')} (device text NOT NULL, stream text NOT NULL, epoch text NOT NULL, high bigint NOT NULL,
         max_created bigint NOT NULL, first_seen timestamptz NOT NULL DEFAULT clock_timestamp(), last_seen timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (device, stream, epoch))`,
      `CREATE INDEX IF NOT EXISTS "${n.table}_epochs_last_seen" ON ${qualified(n, '_epochs')} (last_seen)`,
      `CREATE TABLE IF NOT EXISTS ${qualified(n, '_floors')} (device text NOT NULL, stream text NOT NULL, created bigint NOT NULL, PRIMARY KEY (device, stream))`,
      takeFunction(n),
    ],
  ];
}

export const SCHEMA_VERSION = 1;

/**
 * Creates or migrates the tables of `names`, holding an advisory lock on the schema meanwhile, each
 * migration in its own transaction with its version. Returns the version found before.
 */
export async function migrate(client: pg.ClientBase, names: PostgresNames): Promise<number> {
  const lock = `edge-agent/${names.schema}`;
  await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [lock]);
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${names.schema}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS "${names.schema}"."schema_versions" (target text PRIMARY KEY, version integer NOT NULL)`);
    const found = await client.query<{ version: number }>(`SELECT version FROM "${names.schema}"."schema_versions" WHERE target = $1`, [names.table]);
    const before = found.rows[0]?.version ?? 0;
    const steps = migrations(names);
    for (let version = before + 1; version <= steps.length; version++) {
      await client.query('BEGIN');
      try {
        for (const statement of steps[version - 1]!) await client.query(statement);
        await client.query(
          `INSERT INTO "${names.schema}"."schema_versions" (target, version) VALUES ($1, $2) ON CONFLICT (target) DO UPDATE SET version = excluded.version`,
          [names.table, version],
        );
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    }
    return before;
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lock]).catch(() => {});
  }
}

/**
 * Prunes the dedup state (docs/centre.md, "The dedup window"): marks more than `window` below their epoch's
 * high-water mark, and epochs idle for `retentionMs` (their newest creation time raises the stream's floor).
 * Only the receiver holding the prune lock does it; the others return at once. Returns rows deleted.
 */
export async function prune(client: pg.ClientBase, names: PostgresNames, window: number, retentionMs: number): Promise<number | undefined> {
  const lock = `edge-agent/${names.schema}/${names.table}/prune`;
  const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [lock]);
  if (!got.rows[0]?.ok) return undefined;
  const b = qualified(names, '_batches');
  const e = qualified(names, '_epochs');
  try {
    const marks = await client.query(
      `DELETE FROM ${b} m USING ${e} x WHERE m.device = x.device AND m.stream = x.stream AND m.epoch = x.epoch AND m.seq <= x.high - $1`,
      [window],
    );
    const idle = await client.query(
      `WITH old AS (DELETE FROM ${e} WHERE last_seen < now() - make_interval(secs => $1) RETURNING device, stream, epoch, max_created),
            floors AS (INSERT INTO ${qualified(names, '_floors')} AS f (device, stream, created) SELECT device, stream, max(max_created) FROM old GROUP BY device, stream
                       ON CONFLICT (device, stream) DO UPDATE SET created = greatest(f.created, excluded.created))
       DELETE FROM ${b} m USING old WHERE m.device = old.device AND m.stream = old.stream AND m.epoch = old.epoch`,
      [retentionMs / 1000],
    );
    return (marks.rowCount ?? 0) + (idle.rowCount ?? 0);
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lock]).catch(() => {});
  }
}
