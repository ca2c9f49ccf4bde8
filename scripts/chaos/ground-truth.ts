import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';

/** The kinds of source a chaos run feeds, each its own stream (the source's name). */
export const SOURCE_KINDS = ['sql', 'pg', 'mqtt_q1', 'mqtt_q2'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** The record field that carries the ground-truth id of each kind. */
export const ID_FIELD: Record<SourceKind, string> = { sql: 'id', pg: 'id', mqtt_q1: 'mid', mqtt_q2: 'mid' };

/** What each kind's producer knows it handed over: ids 1…accepted, each acknowledged by its store. */
export interface Producer {
  readonly kind: SourceKind;
  readonly accepted: number;
  tick(count: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Rows with known ids in a SQLite table (WAL, so the agent's read-only source reads beside the writer).
 * A row is accepted once its insert committed: the agent must deliver every one of them.
 */
export class SqlProducer implements Producer {
  readonly kind = 'sql' as const;
  accepted = 0;
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.exec('CREATE TABLE IF NOT EXISTS readings (id INTEGER PRIMARY KEY AUTOINCREMENT, value REAL NOT NULL, note TEXT NOT NULL)');
    this.insert = this.db.prepare('INSERT INTO readings (value, note) VALUES (?, ?)');
  }

  async tick(count: number): Promise<void> {
    let last = 0;
    this.db.transaction(() => {
      for (let i = 0; i < count; i++) last = Number(this.insert.run(Math.random() * 100, 'chaos').lastInsertRowid);
    })();
    if (count > 0) this.accepted = last;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

export interface PostgresServer {
  host: string;
  port: number;
  user: string;
}

/**
 * Rows with known ids in a PostgreSQL table of a database made for the run (dropped at the end). One
 * connection inserts in one transaction at a time, so ids commit in order. A row is accepted once committed.
 */
export class PgProducer implements Producer {
  readonly kind = 'pg' as const;
  readonly database: string;
  accepted = 0;
  private readonly server: PostgresServer;
  private readonly client: pg.Client;

  private constructor(server: PostgresServer, database: string, client: pg.Client) {
    this.server = server;
    this.database = database;
    this.client = client;
  }

  static async open(server: PostgresServer): Promise<PgProducer> {
    const database = `edge_chaos_${randomBytes(5).toString('hex')}`;
    const admin = new pg.Client({ ...server, database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${database}`);
    } finally {
      await admin.end();
    }
    const client = new pg.Client({ ...server, database });
    await client.connect();
    await client.query('CREATE TABLE readings (id serial PRIMARY KEY, value double precision NOT NULL, note text NOT NULL)');
    return new PgProducer(server, database, client);
  }

  async tick(count: number): Promise<void> {
    const { rows } = await this.client.query<{ last: number }>(
      "WITH added AS (INSERT INTO readings (value, note) SELECT random() * 100, 'chaos' FROM generate_series(1, $1::int) RETURNING id) SELECT max(id) AS last FROM added",
      [count],
    );
    if (rows[0]?.last) this.accepted = rows[0].last;
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
    const admin = new pg.Client({ ...this.server, database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${this.database} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  }
}

/**
 * A device publishing `{"mid": n}` to the site's broker at one QoS. A message is accepted once the broker
 * acknowledged it (PUBACK for QoS 1, PUBCOMP for QoS 2); ids are handed out in order and each is published
 * once, so the broker holds 1…accepted (a failed publish is retried with the same id).
 */
export class MqttProducer implements Producer {
  accepted = 0;
  private next = 1;
  private readonly done = new Set<number>();

  readonly kind: SourceKind;
  private readonly client: MqttClient;
  private readonly topic: string;
  private readonly qos: 1 | 2;

  private constructor(kind: SourceKind, client: MqttClient, topic: string, qos: 1 | 2) {
    this.kind = kind;
    this.client = client;
    this.topic = topic;
    this.qos = qos;
  }

  static async open(kind: SourceKind, url: string, topic: string, qos: 1 | 2): Promise<MqttProducer> {
    const client = await mqtt.connectAsync(url, { clientId: `chaos-device-${kind}`, clean: true, reconnectPeriod: 200, protocolVersion: 5 });
    return new MqttProducer(kind, client, topic, qos);
  }

  async tick(count: number): Promise<void> {
    const ids = Array.from({ length: count }, () => this.next++);
    await Promise.all(ids.map((mid) => this.publish(mid)));
  }

  private async publish(mid: number): Promise<void> {
    for (;;) {
      try {
        await this.client.publishAsync(this.topic, JSON.stringify({ mid }), { qos: this.qos });
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    this.done.add(mid);
    while (this.done.has(this.accepted + 1)) this.done.delete(++this.accepted);
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}
