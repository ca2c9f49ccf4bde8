/**
 * The one place the chaos run's agent and receiver configuration is written. Both processes read the same
 * file: `run` uses `sources` and `sink` (through the cuttable link), `receive` uses `receiver` (straight to
 * the centre's broker).
 */
export interface ChaosConfigInput {
  /** The queue's directory (on the power-cut file system when it is in use). */
  dataDir: string;
  /** The centre's broker as the agent sees it: through the link proxy. */
  sinkUrl: string;
  /** The centre's broker as the receiver sees it. */
  centreUrl: string;
  /** The site's broker the MQTT sources subscribe on. */
  siteUrl: string;
  sqlitePath: string;
  output: string;
  receiverState: string;
  /** The receiver's dead-letter store: off the agent's power-cut disk (data_dir), which it must not hold open. */
  deadLetter: string;
  /** A PostgreSQL table to read as well (the `pg` stream). */
  postgres?: { host: string; port: number; user: string; database: string };
}

/**
 * Settings shared by the agent's sink and the receiver's input: rows are deleted on the centre's end-to-end
 * acknowledgement (docs/delivery.md), so a broker that forgets what it acknowledged loses nothing.
 */
export const DELIVERY_SETTINGS: string[] = ['acknowledged_by: centre'];

/**
 * The QoS each MQTT source subscribes with, the same as the device publishes with: QoS 2 is committed once
 * however often the broker resends it; QoS 1 repeats are dropped by the message id the publisher puts in
 * each payload (`dedup`, drivers/sources/mqtt/README.md).
 */
export const SUBSCRIBE_QOS: Record<'mqtt_q1' | 'mqtt_q2', number> = { mqtt_q1: 1, mqtt_q2: 2 };

export const TOPICS = { mqtt_q1: 'chaos/q1', mqtt_q2: 'chaos/q2' } as const;

// The queue blocks its sources when full (disk-full faults included) instead of dropping: the ground truth
// expects every accepted row and message, and a drop policy would lose them by design. Drops the queue
// does count anyway are read from the agent's log and reported beside the losses (queueDrops).

function pgSource(c: ChaosConfigInput): string {
  const p = c.postgres;
  if (!p) return '';
  return `  - { type: postgres, name: pg, host: ${p.host}, port: ${p.port}, user: ${p.user}, database: ${p.database}, table: readings, interval: 200ms, batch_size: 500 }\n`;
}

export function chaosConfigYaml(c: ChaosConfigInput): string {
  const delivery = (indent: string) => DELIVERY_SETTINGS.map((line) => `\n${indent}${line}`).join('');
  const q = JSON.stringify;
  return `device: { id: chaos-gw }
data_dir: ${q(c.dataDir)}
log: { level: info }
keys: { device_private: keys/device.key, centre_public: keys/centre.pub }
sources:
  - { type: sqlite, name: sql, path: ${q(c.sqlitePath)}, table: readings, interval: 200ms, batch_size: 500 }
${pgSource(c)}  - { type: mqtt, name: mqtt_q1, url: ${q(c.siteUrl)}, client_id: chaos-agent-q1, topics: [{ filter: ${TOPICS.mqtt_q1}, qos: ${SUBSCRIBE_QOS.mqtt_q1} }], dedup: { key: json_field, field: mid, window: 4000 } }
  - { type: mqtt, name: mqtt_q2, url: ${q(c.siteUrl)}, client_id: chaos-agent-q2, topics: [{ filter: ${TOPICS.mqtt_q2}, qos: ${SUBSCRIBE_QOS.mqtt_q2} }] }
queue: { synchronous: full, commit_interval: 50ms, full_policy: block }
batch: { max_records: 200 }
sink:
  type: mqtt
  url: ${q(c.sinkUrl)}
  reconnect: { initial_delay: 100ms, max_delay: 1s }${delivery('  ')}
sender:
  retry_initial_delay: 100ms
  retry_max_delay: 1s
  write_timeout: 5s
  centre_ack_timeout: 5s
receiver:
  input:
    type: mqtt
    url: ${q(c.centreUrl)}
    reconnect: { initial_delay: 100ms, max_delay: 1s }${delivery('    ')}
  private_key: keys/centre.key
  devices:
    - { id: chaos-gw, public_keys: [keys/device.pub] }
  state: ${q(c.receiverState)}
  dead_letter: { path: ${q(c.deadLetter)} }
  output: ${q(c.output)}
`;
}
