import { z, duration, size, urlOption } from '../../../agent/sdk/index.ts';
import { MQTT_URL } from '../../common/mqtt-url.ts';
import { passwordOptions } from '../../common/secrets.ts';
import { tlsOptions } from '../../common/tls.ts';

/** An MQTT topic filter: `+` fills one whole level, `#` only the whole last level. */
function isTopicFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return levels.every((level, i) => {
    if (level.includes('#')) return level === '#' && i === levels.length - 1;
    return !level.includes('+') || level === '+';
  });
}

const topic = () =>
  z.strictObject({
    filter: z
      .string()
      .refine(isTopicFilter, 'must be an MQTT topic filter: `+` and `#` only as whole levels, `#` only last')
      .describe('Topic filter, e.g. `site/+/telemetry` or `sensors/#`.'),
    qos: z
      .union([z.literal(0), z.literal(1), z.literal(2)])
      .default(1)
      .describe(
        '2: exactly once: committed once however often the broker sends it again (its packet id is committed with the record; needs a persistent session); 1: the broker keeps a message until the gateway committed it (acknowledged after the commit), a message committed just before a crash can come twice; 0: at most once.',
      ),
  });

/** Built on first use (agent/sdk/define.ts). */
export const mqttSourceOptions = () =>
  z.strictObject({
    url: urlOption(MQTT_URL).describe("Broker URL: mqtt://127.0.0.1:1883, mqtts://host:8883 (TLS), or `embedded` for the agent's in-process broker."),
    topics: z.array(topic()).min(1).describe('Subscriptions: topic filters, each with its QoS.'),
    protocol_version: z
      .union([z.literal(5), z.literal(4)])
      .default(5)
      .describe('MQTT 5 (5) or MQTT 3.1.1 (4; the embedded broker speaks 4).'),
    client_id: z.string().min(1).optional().describe('Client id, the key of the persistent session on the broker; default `edge-agent-source-<source name>`.'),
    session: z
      .enum(['persistent', 'clean'])
      .default('persistent')
      .describe('persistent: the broker queues QoS 1 messages for this client while the agent is down; clean: start afresh at every connect.'),
    session_expiry: duration().default(604_800_000).describe('MQTT 5, persistent session: how long the broker keeps the session while the agent is away.'),
    payload: z
      .enum(['auto', 'json', 'text', 'bytes'])
      .default('auto')
      .describe(
        "json: a JSON object becomes the record's fields (other JSON values go to `payload`), bad JSON is counted and dropped; text: `payload` string; bytes: `payload` bytes; auto: JSON, else UTF-8 text, else bytes.",
      ),
    mqtt5_properties: z
      .boolean()
      .default(false)
      .describe('MQTT 5: add `user_properties`, `message_expiry` (s) and `content_type` to records whose message carries them.'),
    max_pending: z
      .number()
      .int()
      .min(1)
      .max(65_535)
      .default(1000)
      .describe(
        "Messages received but not yet committed. Advertised as MQTT 5 Receive Maximum (the broker's window of unacknowledged QoS 1 messages); beyond it reading pauses.",
      ),
    max_pending_bytes: size()
      .prefault('4MiB')
      .refine((n) => n >= 1, 'at least 1 byte')
      .describe(
        'Payload bytes (plus 128 per message) received but not yet committed; beyond it reading pauses as for max_pending, and nothing waiting is acknowledged, so the broker keeps it. One message always gets through, however large (up to max_payload_bytes).',
      ),
    max_payload_bytes: size()
      .prefault('1MiB')
      .refine((n) => n >= 1 && n <= 256 * 1024 * 1024, 'between 1 byte and 256MiB')
      .describe(
        'Largest message payload accepted. A larger message is counted (`payload_too_large`, logged at a bounded rate with its topic) and acknowledged without a record, so it never blocks the subscription. MQTT 5 also advertises a Maximum Packet Size of this plus 64KiB for topic and properties: the broker then never sends bigger messages at all (it drops them on its side, where they are counted).',
      ),
    dedup: z
      .strictObject({
        key: z
          .enum(['payload_hash', 'json_field', 'user_property', 'correlation_data'])
          .describe(
            'What identifies a message: payload_hash (SHA-256 of topic and payload: identical messages are one), json_field (the JSON payload field named by `field`), user_property (the MQTT 5 user property named by `field`), correlation_data (MQTT 5).',
          ),
        field: z.string().min(1).optional().describe('The JSON field (json_field) or user property (user_property) that carries the message id.'),
        window: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .default(1000)
          .describe(
            'How many of the latest keys are remembered (8 bytes each, committed with the records): a repeat of an older message is not caught. At least max_pending to catch every repeat after a crash.',
          ),
      })
      .refine((d) => d.field !== undefined || (d.key !== 'json_field' && d.key !== 'user_property'), {
        message: '`field` is required with key json_field or user_property',
        path: ['field'],
      })
      .optional()
      .describe(
        'Drops QoS 0/1 messages whose key was seen among the last `window` messages (counter duplicates_dropped). Off by default; see the README for what it can and cannot catch.',
      ),
    batch_max: z.number().int().min(1).default(500).describe('Messages handed to the queue in one emit at most.'),
    batch_wait: duration().default(5).describe('Messages arriving within this time of the first go to the queue in one emit.'),
    username: z.string().optional().describe('User name for the broker.'),
    ...passwordOptions(),
    keepalive: duration().default(30_000).describe('MQTT keepalive.'),
    connect_timeout: duration()
      .default(10_000)
      .describe('How long the first connection and subscription may take before start-up fails (then on_start_error applies).'),
    reconnect_delay: duration(10)
      .default(1_000)
      .describe('Wait between reconnection attempts after the connection dropped (the session keeps messages meanwhile).'),
    tls: tlsOptions('mqtts://'),
  });

export type MqttSourceOptions = z.output<ReturnType<typeof mqttSourceOptions>>;
