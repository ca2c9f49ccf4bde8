/**
 * The PostgreSQL output (docs/centre.md): each batch is taken by one call of `<table>_take`, one statement and
 * so one transaction: the verdict against the dedup marks, the mark and the records commit together or not at
 * all. The receiver acknowledges the message only after `write` resolved, that is after the commit: a crash
 * anywhere repeats the message, and the repeat finds the mark. Exactly once, whichever receiver takes it.
 *
 * A database that cannot be reached (down, restarting, a dropped connection) is waited for, with backoff,
 * for `retry_for` (default for ever): every batch needs the same database, and the broker holds what waits.
 * Memory: the receiver hands one batch at a time per input, so what is in flight is one batch's records
 * and its JSON, bounded by receiver.max_batch_bytes.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import pg from 'pg';
import type { ReceiverPostgresConfig } from '../../config/centre-schema.ts';
import type { AgentRecord } from '../../domain/record.ts';
import type { EnvelopeHeader } from '../../envelope/header.ts';
import { AgentError, describeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { delay as pause } from '../../util/backoff.ts';
import { redactUrl } from '../../util/url.ts';
import { type RecordOutput, recordsJson, type TakeOutcome } from '../output.ts';
import { migrate, type PostgresNames, prune, qualified } from './postgres-schema.ts';

export interface PostgresOutputOptions {
  /** receiver.dedup_window, dedup_epochs and max_streams_per_device. */
  window: number;
  epochs: number;
  streamsPerDevice: number;
  /** receiver.dedup_retention (ms). */
  retentionMs: number;
  /** For password_file. */
  baseDir: string;
  log: Logger;
  /** Aborting it ends a wait for the database at start (a stop requested meanwhile). */
  signal?: AbortSignal;
}

/** Connection-level failures: the database is away, not the batch at fault. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

function waitable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (CONNECTION_CODES.has(code)) return true;
    // 08: connection exception; 57P01-03: shut down or starting; 53: out of resources; 40: serialization, deadlock.
    if (/^(08|57P0[123]|53|40)/.test(code)) return true;
  }
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(describeError(err));
}

/** 22: data exceptions (a NUL in a string, a number out of range); 54: limits (a value too large). The batch's own fault. */
function batchAtFault(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^(22|54)/.test(code);
}

function password(config: ReceiverPostgresConfig, baseDir: string): string | undefined {
  if (config.password_file !== undefined) {
    const path = resolve(baseDir, config.password_file);
    try {
      return readFileSync(path, 'utf8').split(/\r?\n/, 1)[0] ?? '';
    } catch (cause) {
      throw new AgentError('CONFIG_INVALID', `receiver.postgres: cannot read password_file ${path}`, { cause });
    }
  }
  if (config.password_env !== undefined) {
    const value = process.env[config.password_env];
    if (value === undefined) throw new AgentError('CONFIG_INVALID', `receiver.postgres: environment variable ${config.password_env} (password_env) is not set`);
    return value;
  }
  return undefined;
}

/** The URL with the password from file or variable put in (so the password never sits in the config text). */
function connectionString(config: ReceiverPostgresConfig, baseDir: string): string {
  const secret = password(config, baseDir);
  if (secret === undefined) return config.url;
  const url = new URL(config.url);
  url.password = secret;
  return url.toString();
}

const FIRST_WAIT_MS = 200;
const LONGEST_WAIT_MS = 5_000;

/** Connects, migrates the schema (waiting for the database like a batch does) and returns the output. */
export async function postgresOutput(
  config: ReceiverPostgresConfig,
  options: PostgresOutputOptions,
): Promise<RecordOutput & { taken(header: EnvelopeHeader): Promise<boolean> }> {
  const names: PostgresNames = { schema: config.schema, table: config.table };
  const where = `PostgreSQL ${redactUrl(config.url)} (${qualified(names)})`;
  const pool = new pg.Pool({ connectionString: connectionString(config, options.baseDir), max: config.pool_size, connectionTimeoutMillis: 10_000 });
  // An idle connection the server closed (a restart) is an 'error' on the pool: without a listener, a crash.
  pool.on('error', (err) => options.log.debug({ err: describeError(err) }, 'postgres connection closed'));
  const closing = new AbortController();
  options.signal?.addEventListener('abort', () => closing.abort(), { once: true });
  let down: number | undefined;

  /** Runs `work`, waiting out an unreachable database (for `retry_for`, or until closed). */
  async function withDatabase<T>(what: string, work: () => Promise<T>): Promise<T> {
    let delay = FIRST_WAIT_MS;
    for (;;) {
      try {
        const result = await work();
        if (down !== undefined) {
          options.log.info({ where, downForMs: Date.now() - down }, 'postgres reachable again');
          down = undefined;
        }
        return result;
      } catch (err) {
        if (!waitable(err)) throw err;
        const since = (down ??= Date.now());
        if (delay === FIRST_WAIT_MS) options.log.warn({ where, what, err: describeError(err) }, 'postgres not reachable; waiting for it');
        if (closing.signal.aborted || (config.retry_for !== undefined && Date.now() - since >= config.retry_for)) {
          throw new AgentError('OUTPUT_FAILED', `cannot ${what} in ${where}: ${describeError(err)}`, { cause: err, retryable: true });
        }
        await pause(delay, closing.signal);
        delay = Math.min(delay * 2, LONGEST_WAIT_MS);
      }
    }
  }

  try {
    await withDatabase('create the schema', async () => {
      const client = await pool.connect();
      // A client whose query failed goes, not back into the pool: its connection may be the broken thing.
      let failed: Error | undefined;
      try {
        await migrate(client, names);
      } catch (err) {
        failed = err as Error;
        throw err;
      } finally {
        client.release(failed);
      }
    });
  } catch (cause) {
    await pool.end().catch(() => {});
    throw new AgentError('OUTPUT_FAILED', `cannot set up ${where}: ${describeError(cause)}`, { cause });
  }

  const take = `SELECT ${qualified(names, '_take')}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb) AS verdict`;
  let pruning: Promise<void> | undefined;
  const pruneTimer = setInterval(() => {
    pruning ??= (async () => {
      try {
        const client = await pool.connect();
        let failed: Error | undefined;
        try {
          const deleted = await prune(client, names, options.window, options.retentionMs);
          if (deleted) options.log.info({ where, deleted }, 'dedup state pruned');
        } catch (err) {
          failed = err as Error;
          throw err;
        } finally {
          client.release(failed);
        }
      } catch (err) {
        options.log.warn({ where, err: describeError(err) }, 'dedup pruning failed; trying again at the next interval');
      } finally {
        pruning = undefined;
      }
    })();
  }, config.prune_every);
  pruneTimer.unref();

  const has = `SELECT 1 FROM ${qualified(names, '_batches')} WHERE device = $1 AND stream = $2 AND epoch = $3 AND seq = $4`;
  return {
    dedupsItself: true,
    /** Whether the batch is held already: a hint for the topics beside this output, not the verdict. */
    async taken(header: EnvelopeHeader): Promise<boolean> {
      const params = [header.device, header.stream, Buffer.from(header.epoch).toString('hex'), header.seq];
      return withDatabase('look a batch up', async () => ((await pool.query(has, params)).rowCount ?? 0) > 0);
    },
    async write(header: EnvelopeHeader, records: AgentRecord[]): Promise<TakeOutcome> {
      // The record's own time, when it carries one (the queue stamps `ts` in ms): a typed, indexed column.
      const times = records.map((r) => (typeof r.ts === 'number' && Number.isFinite(r.ts) ? r.ts : null));
      let json: string;
      try {
        json = recordsJson(records);
      } catch (cause) {
        throw new AgentError('OUTPUT_UNWRITABLE', `batch ${header.device}/${header.stream}#${header.seq} cannot be written as JSON: ${describeError(cause)}`, {
          cause,
        });
      }
      const epoch = Buffer.from(header.epoch).toString('hex');
      const params = [
        header.device,
        header.stream,
        epoch,
        header.seq,
        header.count,
        header.created,
        options.window,
        options.epochs,
        options.streamsPerDevice,
        times,
        json,
      ];
      try {
        const verdict = await withDatabase('write a batch', async () => (await pool.query<{ verdict: string }>(take, params)).rows[0]?.verdict);
        return verdict === 'new' ? 'taken' : (verdict as TakeOutcome);
      } catch (err) {
        if (err instanceof AgentError) throw err;
        if (batchAtFault(err)) {
          throw new AgentError('OUTPUT_UNWRITABLE', `batch ${header.device}/${header.stream}#${header.seq} refused by ${where}: ${describeError(err)}`, {
            cause: err,
          });
        }
        throw new AgentError('OUTPUT_FAILED', `cannot write to ${where}: ${describeError(err)}`, { cause: err });
      }
    },
    async close() {
      closing.abort();
      clearInterval(pruneTimer);
      await pruning;
      await pool.end();
    },
  };
}
