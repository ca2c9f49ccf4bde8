import type { ConnectionOptions } from 'node:tls';
import type mysql from 'mysql2/promise';
import { AgentError, delay, type Logger } from '../../../agent/sdk/index.ts';
import type { Failure, Observation, RowSize, SqlDialect } from '../../common/sql/poller.ts';
import { positionOf, type Position } from '../../common/sql/position.ts';
import {
  columnsStatement,
  maxStatement,
  readStatement,
  rowSizes,
  sizesStatement,
  type SqlSyntax,
  NULL_ROWS,
  nullCursorStatement,
} from '../../common/sql/statements.ts';
import type { SqlCursorConfig } from '../../common/sql/options.ts';
import { timeParam, typeCast } from './types.ts';
import { describeTlsFailure } from '../../common/tls.ts';
import { connectVerified } from './tls.ts';

export interface MysqlConnection {
  host: string;
  port: number;
  database: string;
  user: string;
  connect_timeout: number;
  late_commit_lag: number;
  password: () => string | undefined;
  /** TLS options read at each connect (the PEM files may be renewed); undefined: plain TCP. */
  ssl?: (() => ConnectionOptions) | undefined;
}

/**
 * Who might still commit rows below an observed maximum: the InnoDB write transactions open at that moment,
 * or, when the account may not list them (no PROCESS privilege), nothing known (settled by time instead).
 */
type TransactionFence = { transactions: ReadonlySet<string> } | { transactions: undefined };

const syntax: SqlSyntax = {
  quote: (identifier) => `\`${identifier.replaceAll('`', '``')}\``,
  bind: (value, values) => {
    // Integers go inline (digits only, so nothing can be injected): a bound string would be compared with a
    // BIGINT as a double, rounding ids beyond 2^53.
    if (typeof value === 'bigint' || typeof value === 'number') return String(value);
    values.push(timeParam(value));
    return '?';
  },
};

/** Write transactions of other sessions: those that changed rows or wait for a lock to do so. */
const OPEN_WRITERS = `SELECT trx_id FROM information_schema.innodb_trx WHERE trx_mysql_thread_id <> CONNECTION_ID() AND (trx_rows_modified > 0 OR trx_state = 'LOCK WAIT')`;

/**
 * InnoDB serves information_schema.innodb_trx from a cache refreshed at most every 100 ms, so a listing may be
 * that old. Listing this long after reading the maximum guarantees the listing reflects a moment after it.
 */
const TRANSACTION_LIST_STALENESS_MS = 150;

const CONNECTION_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ER_CONNECTION_KILLED',
  'ER_SERVER_SHUTDOWN',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
]);

/**
 * MariaDB/MySQL through mysql2: one connection per source, typeCast per connection, the session in UTC, the
 * server-side statement limit = query_timeout. Settling uses the open InnoDB write transactions.
 */
export class MysqlDialect implements SqlDialect<TransactionFence> {
  readonly where: string;
  private conn: mysql.Connection | undefined;
  private readonly connection: MysqlConnection;
  private readonly config: SqlCursorConfig;
  private readonly log: Logger;
  private readonly maxText: string;
  private canListTransactions = true;
  private threadId: number | undefined;
  /** The source's column names, read once per connection. */
  private columns: string[] | undefined;

  constructor(connection: MysqlConnection, config: SqlCursorConfig, log: Logger) {
    this.connection = connection;
    this.config = config;
    this.log = log;
    this.where = `MariaDB/MySQL database ${connection.database} at ${connection.host}:${connection.port}`;
    this.maxText = maxStatement(config, syntax);
  }

  get connected(): boolean {
    return this.conn !== undefined;
  }

  /** The server's id of the current connection (tests KILL it). */
  connectionId(): number | undefined {
    return this.threadId;
  }

  async connect(): Promise<void> {
    const { host, port, database, user, connect_timeout, password, ssl } = this.connection;
    const conn = await connectVerified(
      {
        host,
        port,
        database,
        user,
        password: password(),
        connectTimeout: connect_timeout,
        supportBigNumbers: true,
        bigNumberStrings: true,
        decimalNumbers: false,
        dateStrings: true,
        typeCast,
        enableKeepAlive: true,
      },
      ssl?.(),
    );
    conn.on('error', (err: Error) => {
      // A connection that dies while idle: forget it; the next poll reconnects.
      this.log.warn({ err: err.message, where: this.where }, 'MariaDB/MySQL connection lost');
      if (this.conn === conn) this.conn = undefined;
    });
    try {
      const [rows] = await conn.query('SELECT VERSION() AS version, CONNECTION_ID() AS id');
      const { version, id } = (rows as { version: string; id: number }[])[0]!;
      await conn.query("SET time_zone = '+00:00'");
      // MariaDB limits any statement in seconds; MySQL limits SELECTs in milliseconds.
      if (/mariadb/i.test(version)) await conn.query(`SET SESSION max_statement_time = ${this.config.query_timeout / 1000}`);
      else await conn.query(`SET SESSION max_execution_time = ${Math.round(this.config.query_timeout)}`);
      this.threadId = id;
    } catch (err) {
      conn.destroy();
      throw err;
    }
    this.conn = conn;
  }

  private async query(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
    const conn = this.conn;
    if (!conn) throw new AgentError('SOURCE_FAILED', `${this.where}: not connected`, { retryable: true });
    const [rows] = await conn.query(text, values);
    return rows as Record<string, unknown>[];
  }

  async observe(): Promise<Observation<TransactionFence>> {
    // The maximum first, then the open writers: any writer holding an id below that maximum is still open
    // when it is listed (or has committed, and its row is visible to the later read).
    const [row] = await this.query(this.maxText);
    const max = row ? positionOf(row, this.config.id_column, this.config.timestamp_column, this.where) : undefined;
    return { max, fence: await this.openWriters(), at: Date.now() };
  }

  private async openWriters(): Promise<TransactionFence> {
    if (!this.canListTransactions) return { transactions: undefined };
    await delay(TRANSACTION_LIST_STALENESS_MS);
    try {
      const rows = await this.query(OPEN_WRITERS);
      return { transactions: new Set(rows.map((r) => String(r.trx_id))) };
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'ER_SPECIFIC_ACCESS_DENIED_ERROR' && code !== 'ER_TABLEACCESS_DENIED_ERROR' && code !== 'ER_DBACCESS_DENIED_ERROR') throw err;
      this.canListTransactions = false;
      this.log.warn(
        { where: this.where, late_commit_lag_ms: this.connection.late_commit_lag },
        'cannot list open transactions (grant PROCESS); rows are read only after late_commit_lag instead',
      );
      return { transactions: undefined };
    }
  }

  settled(earlier: Observation<TransactionFence>, now: Observation<TransactionFence>): boolean {
    const before = earlier.fence.transactions;
    const current = now.fence.transactions;
    if (before === undefined || current === undefined) return now.at - earlier.at >= this.connection.late_commit_lag;
    for (const id of before) if (current.has(id)) return false;
    return true;
  }

  async countNullCursor(): Promise<number> {
    const [row] = await this.query(nullCursorStatement(this.config, syntax));
    return Number(row?.[NULL_ROWS] ?? 0);
  }

  async read(after: Position | undefined, upTo: Position, limit: number): Promise<Record<string, unknown>[]> {
    const { text, values } = readStatement(this.config, syntax, after, upTo, limit);
    return this.query(text, values);
  }

  async sizes(after: Position | undefined, upTo: Position, limit: number): Promise<RowSize[]> {
    const conn = this.conn;
    if (!conn) throw new AgentError('SOURCE_FAILED', `${this.where}: not connected`, { retryable: true });
    if (!this.columns) {
      const [, fields] = await conn.query(columnsStatement(this.config, syntax));
      this.columns = (fields ?? []).map((f) => f.name);
    }
    // LENGTH is in bytes, whatever the column's type or character set.
    const { text, values } = sizesStatement(this.config, syntax, this.columns, (q) => `LENGTH(${q})`, after, upTo, limit);
    return rowSizes(await this.query(text, values), this.config, this.where);
  }

  async disconnect(): Promise<void> {
    this.columns = undefined;
    const conn = this.conn;
    this.conn = undefined;
    if (!conn) return;
    await conn.end().catch(() => conn.destroy());
  }

  classify(err: unknown, doing: string): Failure {
    const code = String((err as { code?: unknown }).code ?? '');
    const fatal = (err as { fatal?: unknown }).fatal === true;
    const message = err instanceof Error ? err.message : String(err);
    const input = this.config.table !== undefined ? `table ${this.config.table}` : 'the configured query';
    const fail = (counter: string, what: string, retryable: boolean, reconnect: boolean): Failure => ({
      error: new AgentError('SOURCE_FAILED', `${this.where}: ${what}`, { cause: err, retryable }),
      counter,
      reconnect,
    });
    if (code === 'ER_NO_SUCH_TABLE')
      return fail('missing_table', `${input} does not exist (dropped or renamed?) while ${doing}; retrying every poll`, true, false);
    if (code === 'ER_STATEMENT_TIMEOUT' || code === 'ER_QUERY_TIMEOUT' || /max_statement_time|maximum statement execution time/i.test(message)) {
      return fail('query_timeouts', `query on ${input} cancelled after query_timeout (${this.config.query_timeout} ms) while ${doing}`, true, false);
    }
    if (code === 'ER_BAD_FIELD_ERROR' || code === 'ER_PARSE_ERROR')
      return fail('query_errors', `${input}: ${message} (check id_column, timestamp_column and query)`, false, false);
    const tls = describeTlsFailure(err);
    if (tls) return fail('tls_errors', `${tls}; retrying at the next poll`, true, true);
    if (code === 'HANDSHAKE_NO_SSL_SUPPORT') return fail('tls_errors', `tls is configured but the server does not offer TLS (${message})`, true, true);
    if (code === 'ER_SECURE_TRANSPORT_REQUIRED')
      return fail('tls_errors', `the server accepts only TLS connections (${message}); configure \`tls\``, true, true);
    if (code === 'ER_ACCESS_DENIED_ERROR') {
      // MariaDB refuses a plain connection under require_secure_transport with this same error.
      const hint = this.connection.ssl ? '' : ' (or the server requires TLS: configure `tls`)';
      return fail('auth_errors', `access denied for user ${this.connection.user}${hint}`, true, true);
    }
    if (code === 'ER_BAD_DB_ERROR') return fail('connection_errors', `database ${this.connection.database} does not exist`, true, true);
    if (fatal || CONNECTION_CODES.has(code) || !this.conn) {
      return fail('connection_errors', `connection lost or refused while ${doing} (${message}); reconnecting at the next poll`, true, true);
    }
    return fail('query_errors', `${doing} ${input} failed: ${message}`, true, false);
  }
}
