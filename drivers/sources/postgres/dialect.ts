import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { AgentError, type Logger } from '../../../agent/sdk/index.ts';
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
import { clientTypes } from './types.ts';
import { describeTlsFailure } from '../../common/tls.ts';

export interface PostgresConnection {
  host: string;
  port: number;
  database: string;
  user: string;
  connect_timeout: number;
  password: () => string | undefined;
  /** TLS options read at each connect (the PEM files may be renewed); undefined: plain TCP. */
  ssl?: (() => ConnectionOptions) | undefined;
}

/** The in-progress transaction ids of a snapshot, as far as settling needs them. */
interface SnapshotFence {
  /** Oldest transaction still running (every id below it has finished). */
  xmin: bigint;
  /** Highest transaction id in progress in the snapshot; undefined when none was. */
  newestRunning: bigint | undefined;
}

const syntax: SqlSyntax = {
  quote: (identifier) => `"${identifier.replaceAll('"', '""')}"`,
  bind: (value, values) => {
    values.push(typeof value === 'bigint' ? value.toString() : value);
    return `$${values.length}`;
  },
};

/** "xmin:xmax:xip,…" (pg_snapshot text) → the fence. */
export function parseSnapshot(text: string): SnapshotFence {
  const [xmin, , xip] = text.split(':');
  const running = xip ? xip.split(',').filter(Boolean).map(BigInt) : [];
  // biome-ignore lint/complexity/useMathMinMax: bigints, which Math.max does not take
  return { xmin: BigInt(xmin!), newestRunning: running.length > 0 ? running.reduce((a, b) => (b > a ? b : a)) : undefined };
}

/** PostgreSQL's type oid of bytea. */
const BYTEA_OID = 17;

const CONNECTION_LOST = /terminat|connection|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EHOSTUNREACH|not queryable|timeout expired/i;

/**
 * PostgreSQL through node-postgres: one client per source, type parsers per client, the session in UTC with
 * ISO 8601 intervals, statement_timeout = query_timeout. Settling uses the snapshot's in-progress xids.
 */
export class PostgresDialect implements SqlDialect<SnapshotFence> {
  readonly where: string;
  private client: pg.Client | undefined;
  private readonly connection: PostgresConnection;
  private readonly config: SqlCursorConfig;
  private readonly log: Logger;
  private readonly observeText: string;
  /** The source's columns and their type oids, read once per connection. */
  private columns: Map<string, number> | undefined;

  constructor(connection: PostgresConnection, config: SqlCursorConfig, log: Logger) {
    this.connection = connection;
    this.config = config;
    this.log = log;
    this.where = `PostgreSQL database ${connection.database} at ${connection.host}:${connection.port}`;
    // One statement, one snapshot: the highest row and the transactions that might still commit rows below it.
    this.observeText = `SELECT pg_current_snapshot()::text AS edge_snapshot, m.* FROM (SELECT 1) AS edge_one LEFT JOIN (${maxStatement(config, syntax)}) AS m ON true`;
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** The backend pid of the current connection (tests terminate it). */
  processId(): number | undefined {
    return (this.client as unknown as { processID?: number } | undefined)?.processID;
  }

  async connect(): Promise<void> {
    const { host, port, database, user, connect_timeout, password, ssl } = this.connection;
    const client = new pg.Client({
      ...(ssl ? { ssl: ssl() } : {}),
      host,
      port,
      database,
      user,
      password: password(),
      connectionTimeoutMillis: connect_timeout,
      statement_timeout: this.config.query_timeout,
      keepAlive: true,
      application_name: 'edge-agent',
      options: '-c TimeZone=UTC -c IntervalStyle=iso_8601',
      types: clientTypes,
    });
    // A connection that dies while idle emits 'error'; without a listener that would crash the process.
    client.on('error', (err) => {
      this.log.warn({ err: err.message, where: this.where }, 'PostgreSQL connection lost');
      if (this.client === client) this.client = undefined;
      client.end().catch(() => {});
    });
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    this.client = client;
  }

  private async query(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
    const client = this.client;
    if (!client) throw new AgentError('SOURCE_FAILED', `${this.where}: not connected`, { retryable: true });
    return (await client.query(text, values)).rows as Record<string, unknown>[];
  }

  async observe(): Promise<Observation<SnapshotFence>> {
    const [row] = await this.query(this.observeText);
    const { id_column, timestamp_column } = this.config;
    const max = row![id_column] === null || row![id_column] === undefined ? undefined : positionOf(row!, id_column, timestamp_column, this.where);
    return { max, fence: parseSnapshot(row!.edge_snapshot as string), at: Date.now() };
  }

  settled(earlier: Observation<SnapshotFence>, now: Observation<SnapshotFence>): boolean {
    const running = earlier.fence.newestRunning;
    return running === undefined || now.fence.xmin > running;
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
    const client = this.client;
    if (!client) throw new AgentError('SOURCE_FAILED', `${this.where}: not connected`, { retryable: true });
    if (!this.columns) {
      const { fields } = await client.query(columnsStatement(this.config, syntax));
      this.columns = new Map(fields.map((f) => [f.name, f.dataTypeID]));
    }
    const types = this.columns;
    // bytea: its length as stored (no detoasting); other types: the length of their text form.
    const sizeOf = (q: string, column: string) => (types.get(column) === BYTEA_OID ? `octet_length(${q})::bigint` : `octet_length(${q}::text)::bigint`);
    const { text, values } = sizesStatement(this.config, syntax, [...types.keys()], sizeOf, after, upTo, limit);
    return rowSizes(await this.query(text, values), this.config, this.where);
  }

  async disconnect(): Promise<void> {
    this.columns = undefined;
    const client = this.client;
    this.client = undefined;
    await client?.end();
  }

  classify(err: unknown, doing: string): Failure {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : String(err);
    const input = this.config.table !== undefined ? `table ${this.config.table}` : 'the configured query';
    const fail = (counter: string, what: string, retryable: boolean, reconnect: boolean): Failure => ({
      error: new AgentError('SOURCE_FAILED', `${this.where}: ${what}`, { cause: err, retryable }),
      counter,
      reconnect,
    });
    if (code === '42P01') return fail('missing_table', `${input} does not exist (dropped or renamed?) while ${doing}; retrying every poll`, true, false);
    if (code === '57014')
      return fail('query_timeouts', `query on ${input} cancelled after query_timeout (${this.config.query_timeout} ms) while ${doing}`, true, false);
    if (code === '42703' || code === '42601' || code === '42883')
      return fail('query_errors', `${input}: ${message} (check id_column, timestamp_column and query)`, false, false);
    const tls = describeTlsFailure(err);
    if (tls) return fail('tls_errors', `${tls}; retrying at the next poll`, true, true);
    if (code === '28000' && /no encryption/.test(message))
      return fail('tls_errors', `the server accepts only TLS connections (${message}); configure \`tls\``, true, true);
    if (/does not support SSL/i.test(message)) return fail('tls_errors', `tls is configured but the server does not offer TLS (${message})`, true, true);
    if (code === '28P01' || code === '28000') return fail('auth_errors', `authentication failed for user ${this.connection.user}`, true, true);
    if (code === '3D000') return fail('connection_errors', `database ${this.connection.database} does not exist`, true, true);
    if ((typeof code === 'string' && (code.startsWith('08') || code.startsWith('57P'))) || CONNECTION_LOST.test(message) || !this.client) {
      return fail('connection_errors', `connection lost or refused while ${doing} (${message}); reconnecting at the next poll`, true, true);
    }
    return fail('query_errors', `${doing} ${input} failed: ${message}`, true, false);
  }
}
