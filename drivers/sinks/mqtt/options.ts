import { z, duration, urlOption } from '../../../agent/sdk/index.ts';
import { MQTT_URL } from '../../common/mqtt-url.ts';
import { passwordOptions } from '../../common/secrets.ts';
import { tlsOptions } from '../../common/tls.ts';
import { reconnectOptions } from '../../common/reconnect.ts';

/** Built on first use (agent/sdk/define.ts). */
export const mqttOptions = () =>
  z.strictObject({
    url: urlOption(MQTT_URL).describe("Broker URL: mqtt://host:1883, mqtts://host:8883 (TLS), or `embedded` for the agent's in-process broker."),
    protocol_version: z
      .union([z.literal(5), z.literal(4)])
      .default(5)
      .describe('MQTT 5 (5) or MQTT 3.1.1 (4).'),
    client_id: z.string().min(1).optional().describe('Client id; default `edge-agent-<device id>` (sink) or `edge-receiver` (consumer).'),
    topic_prefix: z
      .string()
      .regex(/^[^#+]+$/, 'must not contain MQTT wildcards')
      .default('edge-agent/v1')
      .describe('Batches are published to `<topic_prefix>/<device>/<stream>`; the receiver subscribes to `<topic_prefix>/+/+`.'),
    username: z.string().optional(),
    ...passwordOptions(),
    keepalive: duration().default(30_000).describe('MQTT keepalive.'),
    connect_timeout: duration().default(10_000),
    reconnect: reconnectOptions(),
    tls: tlsOptions('mqtts://'),
    acknowledged_by: z
      .enum(['broker', 'centre'])
      .default('broker')
      .describe(
        "When a batch counts as delivered and its rows leave the queue. `centre`: on the receiver's acknowledgement, sent once the batch is in its durable output and authenticated with the device's keys (end to end; the centre must run edge-agent's receiver, which publishes to `<topic_prefix>/<device>/<stream>/ack`). `broker`: on the broker's PUBACK (a PUBACK with reason 0x10 'no matching subscribers' or an error reason is never a delivery). docs/delivery.md",
      ),
    session_expiry: duration()
      .default(86_400_000)
      .describe("Consumer only: how long the broker keeps the receiver's session (and queues for it) while it is away."),
    announce_online: z
      .boolean()
      .default(false)
      .describe(
        'Consumer only: publish a retained online state on `<topic_prefix>/_centre` (1 while connected, 0 by will or on close), so gateways with `governor.gates.centre` send bulk only while the centre listens.',
      ),
  });

export type MqttOptions = z.output<ReturnType<typeof mqttOptions>>;
