/**
 * `receiver.kafka_output`: the receiver writes decrypted records to a Kafka topic (JSON, one message per
 * record) instead of JSON lines (docs/delivery.md#kafka). Its own file because schema.ts is the whole file's
 * shape, and this output is a feature of its own.
 */
import { z } from '../util/zod.ts';
import { envOption } from '../util/env-option.ts';
import { fileOption } from '../util/file-option.ts';
import { tlsOptions } from '../util/tls.ts';
import { duration } from '../util/units.ts';

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/, 'host:port (no scheme; TLS is turned on by the `tls` block)');

export const kafkaOutputSchema = z
  .strictObject({
    brokers: z.array(hostPort).min(1).describe('Bootstrap brokers of the cluster the records go to, `host:port` each.'),
    topic: z
      .string()
      .regex(/^[\w.-]{1,249}$/, 'Kafka topic names: letters, digits, `.`, `_`, `-`, up to 249')
      .default('edge-agent-records')
      .describe('Topic of decrypted records: one JSON message per record, keyed `<device>/<stream>` (one series stays in order in one partition).'),
    client_id: z.string().min(1).default('edge-receiver-output').describe('Kafka client id of the output producer.'),
    tls: tlsOptions('the brokers (TLS is on when this block is present)', { peer: 'broker' }),
    sasl: z
      .strictObject({
        mechanism: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']),
        username: z.string().min(1),
        password_file: fileOption(z.string().optional().describe('File holding the password (its first line; relative to the config file).'), {
          what: 'kafka output password',
          secret: true,
        }),
        password_env: envOption(z.string().optional().describe('Environment variable holding the password.'), { what: 'kafka output password' }),
      })
      .optional()
      .describe('SASL authentication for the output producer.'),
    request_timeout: duration().default(30_000).describe('How long one produce request may take.'),
    max_request_bytes: z
      .number()
      .int()
      .min(1024)
      .default(512 * 1024)
      .describe("A batch's records are sent in produce requests of about this many bytes (keep below the topic's max.message.bytes, 1 MiB by default)."),
  })
  .describe(
    'Write decrypted records to a Kafka topic (at least once; each message carries its record identity for consumers to deduplicate) instead of to `output`.',
  );

export type KafkaOutputConfig = z.output<typeof kafkaOutputSchema>;
