import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';

/** The kinds of source a chaos run feeds, each its own stream (the source's name). */
export const SOURCE_KINDS = ['sql', 'mqtt_q1', 'mqtt_q2'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** The record field that carries the ground-truth id of each kind. */
export const ID_FIELD: Record<SourceKind, string> = { sql: 'id', mqtt_q1: 'mid', mqtt_q2: 'mid' };

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
