import { z, duration, size } from '../../../agent/sdk/index.ts';
import { reconnectOptions } from '../../common/reconnect.ts';
import { passwordOptions } from '../../common/secrets.ts';
import { tlsOptions } from '../../common/tls.ts';

/** host:port, the form Kafka's bootstrap lists take (no scheme: TLS is the `tls` block's presence). */
const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/, 'host:port (no scheme; TLS is turned on by the `tls` block)')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65_535, 'port above 65535');

/** Built on first use (agent/sdk/define.ts). */
export const kafkaOptions = () =>
  z.strictObject({
    brokers: z.array(hostPort).min(1).describe('Bootstrap brokers, `host:port` each; the rest of the cluster is learnt from them.'),
    topic: z
      .string()
      .regex(/^[\w.-]{1,249}$/, 'Kafka topic names: letters, digits, `.`, `_`, `-`, up to 249')
      .default('edge-agent-batches')
      .describe(
        'Topic every gateway writes its sealed batches to. The message key is `<device>/<stream>`, so one series stays in one partition, in order. Create it with as many partitions as receivers you may run (receivers share partitions).',
      ),
    client_id: z.string().min(1).optional().describe('Kafka client id; default `edge-agent-<device id>` (sink) or the receiver name (consumer).'),
    tls: tlsOptions('the brokers (TLS is on when this block is present)', { peer: 'broker' }),
    sasl: z
      .strictObject({
        mechanism: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']).describe('SASL mechanism. PLAIN sends the password as is: use it only with `tls`.'),
        username: z.string().min(1),
        ...passwordOptions(),
      })
      .optional()
      .describe('SASL authentication; the password is read from a file or an environment variable at each connection.'),
    connect_timeout: duration().default(10_000).describe('How long opening a broker connection may take.'),
    request_timeout: duration().default(30_000).describe('How long one request (a produce, a fetch) may take before it fails.'),
    retries: z
      .number()
      .int()
      .min(2)
      .max(100)
      .default(3)
      .describe(
        'Attempts the client makes on its own (same producer sequence, so the broker stores a batch once) before a write fails as retryable and the runtime sends it again later. At least 2: the client takes fewer as unlimited retries for an idempotent producer, and a write would never fail.',
      ),
    max_in_flight_bytes: size()
      .default(8 * 1024 * 1024)
      .describe('Sink: most bytes of batches awaiting their acknowledgement at once; further writes wait for room (backpressure).'),
    max_request_bytes: size()
      .default(512 * 1024)
      .describe(
        "Sink: batches written while a produce request is out go together in the next one, up to this many bytes (one larger batch goes alone). Keep it below the topic's max.message.bytes (1 MiB by default).",
      ),
    reconnect: reconnectOptions(),
    group: z
      .string()
      .regex(/^[\w.-]+$/)
      .default('edge-receiver')
      .describe('Consumer only: consumer group. Receivers in one group share the partitions; its committed offsets are where a receiver resumes.'),
    session_timeout: duration()
      .default(30_000)
      .describe(
        "Consumer only: how long the group waits for a receiver's heartbeat before giving its partitions to the others (broker bounds: 6s–5m by default).",
      ),
    max_fetch_bytes: size()
      .default(4 * 1024 * 1024)
      .describe('Consumer only: most bytes one fetch brings in (at least one message is always returned, however large).'),
  });

export type KafkaOptions = z.output<ReturnType<typeof kafkaOptions>>;
