import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { compatibilityPartitioner, Producer, type MessageToProduce } from '@platformatic/kafka';
import type { KafkaOutputConfig } from '../config/receiver-kafka-output-schema.ts';
import type { AgentRecord } from '../domain/record.ts';
import type { EnvelopeHeader } from '../envelope/header.ts';
import { AgentError, describeError } from '../errors.ts';
import { tlsConnectionOptions } from '../util/tls.ts';
import { toJsonChunks, type RecordOutput } from './output.ts';

/** Broker answers that say these records can never be stored: the batch is set aside, not retried. */
const UNWRITABLE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD']);

type Message = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;

/**
 * The identity of a record in the output: `<device>/<stream>/<epoch>/<seq>/<index>`. A batch written again
 * (a retry after a partial failure, a receiver that died before committing its input offset) gives its
 * records the same identities, so a consumer of the topic drops repeats by this key.
 */
export function recordId(header: EnvelopeHeader, epochHex: string, index: number): string {
  return `${header.device}/${header.stream}/${epochHex}/${header.seq}/${index}`;
}

/**
 * A batch's records as Kafka messages: the JSON line of the JSON-lines output (device, stream, epoch, seq,
 * record; docs/wire-format.md "Receiver output") with the record's `id` first, keyed `<device>/<stream>`,
 * with the id also in an `edge-id` header (deduplication without parsing the value).
 */
export function recordMessages(topic: string, header: EnvelopeHeader, records: AgentRecord[]): Message[] {
  const epoch = Buffer.from(header.epoch).toString('hex');
  const key = Buffer.from(`${header.device}/${header.stream}`);
  // JSON escapes newlines inside strings, so in the joined lines a newline only ever ends a record.
  const text = Buffer.concat(toJsonChunks(header, records));
  const messages: Message[] = [];
  let start = 0;
  for (let index = 0; start < text.length; index++) {
    const end = text.indexOf(0x0a, start);
    const id = recordId(header, epoch, index);
    // `{"id":"…",` followed by the line without its opening brace: the same object with the id first.
    const value = Buffer.concat([Buffer.from(`{"id":${JSON.stringify(id)},`), text.subarray(start + 1, end)]);
    messages.push({ topic, key, value, headers: new Map([[Buffer.from('edge-id'), Buffer.from(id)]]) });
    start = end + 1;
  }
  return messages;
}

function readPassword(config: NonNullable<KafkaOutputConfig['sasl']>, baseDir: string): string {
  if (config.password_file !== undefined) {
    const path = resolve(baseDir, config.password_file);
    try {
      return readFileSync(path, 'utf8').split(/\r?\n/, 1)[0] ?? '';
    } catch (cause) {
      throw new AgentError('CONFIG_INVALID', `receiver.kafka_output.sasl: cannot read password_file ${path}`, { cause });
    }
  }
  const name = config.password_env;
  const value = name === undefined ? undefined : process.env[name];
  if (value === undefined) throw new AgentError('CONFIG_INVALID', 'receiver.kafka_output.sasl: needs password_file or a set password_env');
  return value;
}

function protocolIds(err: unknown, depth = 0): string[] {
  if (depth > 6 || typeof err !== 'object' || err === null) return [];
  const own = (err as { apiId?: unknown }).apiId;
  const nested = (err as { errors?: unknown }).errors;
  return [
    ...(typeof own === 'string' ? [own] : []),
    ...(Array.isArray(nested) ? nested.flatMap((e) => protocolIds(e, depth + 1)) : []),
    ...protocolIds((err as { cause?: unknown }).cause, depth + 1),
  ];
}

/**
 * Decrypted records to a Kafka topic. `write` resolves once the broker acknowledged every record of the batch
 * (idempotent producer, acks=all), and only then does the receiver commit its input and mark the batch seen:
 * at least once. A failure is retryable OUTPUT_FAILED (the receiver retries for receiver.output_retry_for);
 * records the broker refuses as too large or invalid make the batch OUTPUT_UNWRITABLE (set aside).
 */
export function kafkaOutput(config: KafkaOutputConfig, baseDir: string): RecordOutput {
  const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
    clientId: config.client_id,
    bootstrapBrokers: config.brokers,
    timeout: config.request_timeout,
    requestTimeout: config.request_timeout,
    retries: 3,
    retryDelay: 250,
    idempotent: true,
    acks: -1,
    autocreateTopics: true,
    // Java-compatible key hashing: a series lands where the Java client would put it too.
    partitioner: compatibilityPartitioner,
    ...(config.tls ? { tls: tlsConnectionOptions(config.tls, baseDir, 'receiver.kafka_output') } : {}),
    ...(config.sasl ? { sasl: { mechanism: config.sasl.mechanism, username: config.sasl.username, password: () => readPassword(config.sasl!, baseDir) } } : {}),
  });
  return {
    async write(header, records) {
      const what = `${header.device}/${header.stream}#${header.seq}`;
      let messages: Message[];
      try {
        messages = recordMessages(config.topic, header, records);
      } catch (cause) {
        throw new AgentError('OUTPUT_UNWRITABLE', `batch ${what} cannot be written as JSON: ${describeError(cause)}`, { cause });
      }
      // Requests of about max_request_bytes: one whole batch could exceed the broker's record-batch limit.
      for (let at = 0; at < messages.length; ) {
        let bytes = 0;
        let end = at;
        while (end < messages.length && (end === at || bytes + messages[end]!.value!.length <= config.max_request_bytes)) {
          bytes += messages[end]!.value!.length;
          end++;
        }
        try {
          await producer.send({ messages: messages.slice(at, end) });
        } catch (cause) {
          const refused = protocolIds(cause).find((id) => UNWRITABLE.has(id));
          if (refused) throw new AgentError('OUTPUT_UNWRITABLE', `Kafka refused records of batch ${what}: ${refused}`, { cause });
          throw new AgentError('OUTPUT_FAILED', `cannot write batch ${what} to Kafka topic ${config.topic}: ${describeError(cause).slice(0, 300)}`, {
            cause,
            retryable: true,
          });
        }
        at = end;
      }
    },
    async close() {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([producer.close().catch(() => {}), new Promise<void>((done) => (timer = setTimeout(done, 3_000)))]);
      clearTimeout(timer);
    },
  };
}
