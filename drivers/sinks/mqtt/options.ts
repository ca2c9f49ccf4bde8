import { z, duration } from '../../../agent/sdk/index.ts';

export const mqttOptions = z.strictObject({
  url: z
    .string()
    .describe('Broker URL: mqtt://host:1883, mqtts://host:8883 (TLS), or `embedded` for the agent\'s in-process broker.'),
  protocol_version: z.union([z.literal(5), z.literal(4)]).default(5).describe('MQTT 5 (5) or MQTT 3.1.1 (4).'),
  client_id: z.string().min(1).optional().describe('Client id; default `edge-agent-<device id>` (sink) or `edge-receiver` (consumer).'),
  topic_prefix: z
    .string()
    .regex(/^[^#+]+$/, 'must not contain MQTT wildcards')
    .default('edge-agent/v1')
    .describe('Batches are published to `<topic_prefix>/<device>/<stream>`; the receiver subscribes to `<topic_prefix>/+/+`.'),
  username: z.string().optional(),
  password_file: z.string().optional().describe('File holding the password (the password itself is never written in config).'),
  password_env: z.string().optional().describe('Environment variable holding the password.'),
  keepalive: duration().default(30_000).describe('MQTT keepalive.'),
  connect_timeout: duration().default(10_000),
  reconnect: z
    .strictObject({
      initial_delay: duration().default(500),
      max_delay: duration().default(60_000),
    })
    .default({ initial_delay: 500, max_delay: 60_000 })
    .describe('Reconnect backoff with full jitter between 0 and min(max_delay, initial_delay·2^attempt).'),
  tls: z
    .strictObject({
      ca: z.string().optional().describe('PEM file of the CA(s) that signed the broker certificate.'),
      cert: z.string().optional().describe('PEM client certificate file, for client-certificate authentication.'),
      key: z.string().optional().describe('PEM private key file of the client certificate.'),
      reject_unauthorized: z.boolean().default(true).describe('Verify the broker certificate. Turn off only for tests.'),
      servername: z.string().optional().describe('TLS SNI / name to verify, when it differs from the URL host.'),
    })
    .optional()
    .describe('TLS settings; used with mqtts:// URLs.'),
  session_expiry: duration()
    .default(86_400_000)
    .describe('Consumer only: how long the broker keeps the receiver\'s session (and queues for it) while it is away.'),
});

export type MqttOptions = z.output<typeof mqttOptions>;
