import { z } from '../util/zod.ts';
import { COMPRESSIONS, DEFAULT_COMPRESSION } from '../envelope/codec.ts';
import { MOST_NESTING } from '../envelope/cbor-decode.ts';
import { duration, size } from '../util/units.ts';
import type { SinkDriver } from '../contracts/sink.ts';
import type { CommonSourceConfig, SourceDriver } from '../contracts/source.ts';
import { fleetSchema, NAME } from './fleet-schema.ts';
import { receiverPostgresSchema } from './centre-schema.ts';
import { governorSchema } from './governor-schema.ts';
import { httpSchema } from './http-schema.ts';
import { kafkaOutputSchema } from './receiver-kafka-output-schema.ts';

export { fleetBrokerSchema } from './fleet-schema.ts';

const name = (what: string) => z.string().regex(NAME, `${what} must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit`);

/** Fields every source has, whatever its driver. */
const commonSourceFields = {
  name: name('source name').describe("Unique name; keys the source's committed cursor, so keep it stable."),
  stream: name('stream name').optional().describe('Stream the records go to; defaults to the source name.'),
  interval: duration(10).prefault('10s').describe('Polled sources: time between polls (at least 10ms).'),
  on_start_error: z
    .enum(['fail', 'retry', 'ignore'])
    .default('retry')
    .describe('When the source cannot start: stop the agent, retry with backoff (default), or log and leave it off.'),
};

/**
 * The driver types a config names, when the schema is built for one config: only these drivers' option
 * schemas are built (agent/sdk/define.ts builds each on first use). Absent: every driver's (docs, JSON Schema).
 */
export interface NamedDriverTypes {
  readonly sources: ReadonlySet<string>;
  readonly sinks: ReadonlySet<string>;
}

function driverUnion<D extends { type: string; options: z.ZodObject }>(drivers: readonly D[], extra: z.ZodRawShape, named: ReadonlySet<string> | undefined) {
  // safeExtend keeps the driver's object-level checks (one option excludes another, say), so check-config
  // reports them like any other config error; strict, because an unknown key is an error wherever it is.
  // A type the config does not name gets a variant with its discriminator only: no entry of that config
  // reaches it, and the union still knows every type, so a wrong `type:` is reported the same way.
  const variants = drivers.map((d) =>
    named === undefined || named.has(d.type)
      ? d.options.safeExtend({ type: z.literal(d.type), ...extra }).strict()
      : z.strictObject({ type: z.literal(d.type) }),
  );
  return z.discriminatedUnion('type', variants as unknown as [z.ZodObject, ...z.ZodObject[]]);
}

/**
 * The config file's schema for a given set of drivers: built by the composition root from the driver list it
 * holds (agent/app.ts), never from a list the config layer would import itself.
 */
export function buildConfigSchemas(drivers: { sources: readonly SourceDriver[]; sinks: readonly SinkDriver[] }, named?: NamedDriverTypes) {
  const sourceSchema = driverUnion(drivers.sources, commonSourceFields, named?.sources);
  const sinkSchema = driverUnion(drivers.sinks, {}, named?.sinks);
  const configSchema = z
    .strictObject({
      device: z
        .strictObject({ id: name('device id').describe("This gateway's id; the centre knows it by this id and its public key.") })
        .optional()
        .describe('Required by `run`.'),
      data_dir: z.string().default('./data').describe('Directory for the queue and the receiver state (relative to the config file).'),
      log: z
        .strictObject({
          level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
          format: z
            .enum(['auto', 'text', 'json'])
            .default('auto')
            .describe(
              'Logs on stderr: text lines for a person, JSON lines for a collector, or auto (text when stderr is a terminal). `--log-format` overrides it.',
            ),
        })
        .prefault({}),
      keys: z
        .strictObject({
          device_private: z.string().default('keys/device.key').describe("This device's X25519 private key (mode 0600), from `edge-agent keygen`."),
          centre_public: z.string().default('keys/centre.pub').describe("The centre's X25519 public key."),
          generate_if_missing: z.boolean().default(false).describe('Create missing device and centre key pairs at start (demo and tests only).'),
        })
        .prefault({}),
      queue: z
        .strictObject({
          path: z.string().default('queue.db').describe('SQLite file, relative to data_dir.'),
          synchronous: z
            .enum(['full', 'normal'])
            .default('full')
            .describe(
              'full: every commit is on disk before sources are told (no acknowledged record is lost on power loss; 0 lost in 170 simulated cuts). normal: commits are synced only at checkpoints, at least every sync_interval; a power cut loses what was committed since (docs/power-loss.md). A process crash loses nothing in either mode.',
            ),
          sync_interval: duration(10)
            .prefault('1s')
            .describe('With synchronous: normal, the write-ahead log is synced (checkpointed) at least this often, which bounds what a power cut can take.'),
          commit_every_records: z.number().int().min(1).default(1000).describe('Group commit: commit as soon as this many records wait…'),
          commit_interval: duration()
            .prefault('500ms')
            .describe(
              "…or when the first waiting record has waited this long. The flash-wear knob at low rates: every commit writes a few pages whatever it holds (shipped executable at 1k rec/s: 100ms writes 1.42× the records' JSON size, 250ms 1.04×, 1s 0.38×; docs/benchmarks.md).",
            ),
          max_bytes: size().prefault('256MiB').describe('Upper bound of queued data (compressed).'),
          max_age: duration().prefault('30d').describe('Records older than this are dropped (counted as expired).'),
          min_free_disk: size()
            .prefault('64MiB')
            .describe(
              "Below this much free space on the queue's file system the queue stops growing and applies full_policy (drops counted as disk_full) until space is back; 0 turns the watermark off.",
            ),
          full_policy: z.enum(['drop_oldest', 'drop_newest', 'block']).default('drop_oldest').describe('What happens when max_bytes is reached.'),
          cache_size: size().prefault('2MiB').describe('SQLite page cache.'),
        })
        .prefault({}),
      batch: z
        .strictObject({
          max_records: z.number().int().min(1).max(100_000).default(1000),
          max_bytes: size()
            .prefault('256KiB')
            .describe(
              "Upper bound of a batch's CBOR before compression. A record larger than this alone is dropped at ingest, counted as too_large: no batch could carry it. A centre with default limits takes up to 512KiB (receiver.max_batch_bytes); check-config warns above.",
            ),
          compression: z.enum(COMPRESSIONS).default(DEFAULT_COMPRESSION),
          level: z.number().int().optional().describe('Compression level; default deflate 1, brotli 4, zstd 1. Ranges: deflate 0–9, brotli 0–11, zstd 1–22.'),
        })
        .superRefine((batch, ctx) => {
          const range: readonly [number, number] = ({ none: [0, 0], deflate: [0, 9], brotli: [0, 11], zstd: [1, 22] } as const)[batch.compression];
          if (batch.level !== undefined && (batch.level < range[0] || batch.level > range[1])) {
            ctx.addIssue({
              code: 'custom',
              path: ['level'],
              message: `${batch.compression} takes a level from ${range[0]} to ${range[1]}, got ${batch.level}`,
            });
          }
        })
        .prefault({}),
      streams: z
        .record(
          name('stream name'),
          z.strictObject({
            priority: z.number().int().min(0).max(100).default(50).describe('Higher leaves first (alarms before telemetry).'),
            max_bytes: size().optional().describe("Bound of this stream's queued data; queue.full_policy applies to it as to the whole queue."),
            max_age: duration().optional().describe('Records of this stream older than this expire (default queue.max_age).'),
            drain: z
              .enum(['oldest_first', 'live_first'])
              .default('oldest_first')
              .describe('oldest_first: a backlog leaves in order. live_first: new records leave first; the backlog drains when nothing newer waits.'),
          }),
        )
        .default({})
        .describe("Per-stream settings, by stream name (a source's stream defaults to its name)."),
      sources: z.array(sourceSchema).default([]),
      sink: sinkSchema.optional().describe('Where batches go. Required by `run`.'),
      sender: z
        .strictObject({
          max_in_flight: z
            .number()
            .int()
            .min(1)
            .max(1000)
            .default(16)
            .describe("Batches awaiting their acknowledgement at once (the broker's, or the centre's with the sink's acknowledged_by: centre)."),
          max_in_flight_bytes: size()
            .prefault('8MiB')
            .describe('Envelope bytes awaiting their acknowledgement at once, centre acknowledgements included; one batch always goes, whatever its size.'),
          write_timeout: duration().prefault('30s'),
          centre_ack_timeout: duration()
            .prefault('30s')
            .describe(
              "With the sink's acknowledged_by: centre, a batch the broker took but the centre has not acknowledged within this is sent again (same sequence; the receiver drops the copy and acknowledges again). Doubles with each re-send of the batch, up to centre_ack_max_timeout.",
            ),
          centre_ack_max_timeout: duration().prefault('10m').describe('Longest wait for a centre acknowledgement before a re-send (see centre_ack_timeout).'),
          retry_initial_delay: duration().prefault('500ms'),
          retry_max_delay: duration().prefault('60s'),
        })
        .prefault({}),
      broker: z
        .strictObject({
          embedded: z.boolean().default(false).describe('Run an in-process MQTT broker; sinks and inputs with url `embedded` use it.'),
          host: z.string().default('127.0.0.1'),
          port: z.number().int().min(0).max(65535).default(0).describe('0 picks a free port.'),
          username: z
            .string()
            .min(1)
            .optional()
            .describe('When set, every client must connect with this user name and the password from password_file or password_env.'),
          password_file: z.string().optional().describe("File holding the embedded broker's password (its first line; relative to the config file)."),
          password_env: z.string().optional().describe("Environment variable holding the embedded broker's password."),
          // No schema default, so an unset key stays absent from the parsed config; the broker applies 1 MiB.
          max_packet_bytes: size()
            .optional()
            .describe(
              'Largest MQTT packet a client may send (default 1MiB); a larger one closes its connection as soon as its length is read, before the body is buffered.',
            ),
          max_queued_bytes_per_client: size()
            .prefault('16MiB')
            .describe(
              'QoS 1/2 messages held for one persistent-session subscriber (away, or not acknowledging), in bytes; past it that subscriber\'s oldest message is dropped and counted (edge_broker_queue_dropped_total{reason="client_bytes"}). Never below one max_packet_bytes (and overhead).',
            ),
          max_queued_bytes: size()
            .prefault('64MiB')
            .describe(
              'QoS 1/2 messages held for all persistent-session subscribers together, in bytes; past it the oldest message of any subscriber is dropped and counted (reason="total_bytes").',
            ),
          max_connections: z
            .number()
            .int()
            .min(1)
            .default(1000)
            .describe('Client connections open at once; a further one is closed as it arrives and counted (edge_broker_connections_refused_total).'),
          max_subscriptions_per_client: z
            .number()
            .int()
            .min(1)
            .default(1000)
            .describe(
              'Topic filters one client may hold; a further one is refused in the SUBACK (0x80) and counted (edge_broker_subscriptions_refused_total).',
            ),
          max_retained_messages: z
            .number()
            .int()
            .min(0)
            .default(10_000)
            .describe(
              'Topics with a retained message at most; a retained message for a further topic is delivered but not kept, and counted (edge_broker_retained_refused_total).',
            ),
          max_unreleased_bytes_per_client: size()
            .prefault('4MiB')
            .describe(
              'QoS 2 messages one publisher has sent and not yet released (PUBREL), in bytes; a further one closes its connection unacknowledged (it sends it again later), counted (edge_broker_unreleased_refused_total). Never below one max_packet_bytes (and overhead).',
            ),
          max_unreleased_bytes: size()
            .prefault('16MiB')
            .describe('QoS 2 messages all publishers have sent and not yet released, in bytes; past it as max_unreleased_bytes_per_client.'),
          max_retained_bytes: size()
            .prefault('16MiB')
            .describe('Bytes of retained messages at most; a retained message that would pass it is delivered but not kept, and counted.'),
        })
        .superRefine((b, ctx) => {
          if (b.username !== undefined && b.password_file === undefined && b.password_env === undefined) {
            ctx.addIssue({ code: 'custom', path: ['username'], message: 'broker.username needs broker.password_file or broker.password_env' });
          }
          if (b.username === undefined && (b.password_file !== undefined || b.password_env !== undefined)) {
            ctx.addIssue({ code: 'custom', path: ['username'], message: 'a broker password needs broker.username' });
          }
        })
        .prefault({}),
      fleet: fleetSchema,
      http: httpSchema,

      governor: governorSchema,
      receiver: z
        .strictObject({
          enabled: z.boolean().default(false).describe('`run` also runs the receiver in the same process (demo); `receive` always does.'),
          input: sinkSchema.optional().describe('Where to read batches; defaults to the `sink` section.'),
          private_key: z.string().default('keys/centre.key').describe("The centre's X25519 private key."),
          extra_private_keys: z.array(z.string()).default([]).describe('Older centre keys still accepted while devices rotate to the new one.'),
          devices: z
            .array(z.strictObject({ id: name('device id'), public_keys: z.array(z.string()).min(1).describe("Files of the device's X25519 public keys.") }))
            .default([]),
          state: z.string().default('receiver.db').describe('Dedup state (SQLite), relative to data_dir.'),
          output: z.string().default('-').describe('`-` for stdout, or a file that JSON lines are appended to.'),
          postgres: receiverPostgresSchema.optional(),
          topic_output: sinkSchema
            .optional()
            .describe('A topic the decrypted records are also published to, as JSON lines, one message per batch (any sink type; docs/centre.md).'),
          kafka_output: kafkaOutputSchema.optional(),
          dedup_window: z
            .number()
            .int()
            .min(1)
            .default(1_000_000)
            .describe('Batches more than this many sequences behind the newest of their stream are refused as replays.'),
          dedup_epochs: z
            .number()
            .int()
            .min(1)
            .max(1000)
            .default(8)
            .describe(
              "Queue epochs remembered per device and stream (a gateway's queue starts a new epoch when it is replaced). Beyond this the oldest is forgotten; a batch of a forgotten epoch is refused as stale unless created after everything it held (docs/operations.md).",
            ),
          dedup_retention: duration()
            .prefault('30d')
            .describe(
              'A queue epoch with no batch taken for this long is forgotten (its marks deleted; a batch of it created at or before its newest is refused as stale): bounds the dedup state by time (docs/centre.md).',
            ),
          max_streams_per_device: z
            .number()
            .int()
            .min(1)
            .default(1000)
            .describe("Streams remembered per device; a device's batches on a further stream are refused (counted as RECEIVER_STREAM_LIMIT)."),
          max_envelope_bytes: size()
            .prefault('1MiB')
            .describe(
              "Largest message accepted, checked before any decryption or decompression; a larger one is refused (ENVELOPE_TOO_LARGE). A gateway's batch is at most its batch.max_bytes (default 256KiB) plus 1KiB of header, tag and compression overhead: keep this above that. Part of the heap `receive` sizes itself for (docs/operations.md).",
            ),
          max_batch_bytes: size()
            .prefault('512KiB')
            .describe(
              "Largest batch body after decompression; inflating stops there and the batch is set aside in the dead-letter store (ENVELOPE_MALFORMED/too-large). Keep it at or above every gateway's batch.max_bytes. The heap `receive` sizes itself for grows by 256 bytes per byte of this (docs/operations.md).",
            ),
          max_records: z
            .number()
            .int()
            .min(1)
            .max(1_000_000)
            .default(100_000)
            .describe(
              "Most records in one batch, checked before any record is decoded; more is set aside in the dead-letter store (ENVELOPE_MALFORMED/too-many-records). Keep it at or above every gateway's batch.max_records.",
            ),
          max_nesting: z
            .number()
            .int()
            .min(2)
            .max(MOST_NESTING)
            .default(256)
            .describe(
              'Deepest nesting of arrays and maps in a batch, the batch array being level 1 and a record level 2; deeper is set aside in the dead-letter store (ENVELOPE_MALFORMED/too-deep). 256 matches what a gateway accepts at ingest (records of at most 255 levels).',
            ),
          output_retry_for: duration()
            .prefault('5m')
            .describe(
              "How long a batch whose output fails for a reason that may clear (the output's disk full, an I/O error) is retried, with backoff from 0.5s to 30s, before it is set aside in the dead-letter store; nothing after it is acknowledged meanwhile.",
            ),
          dead_letter: z
            .strictObject({
              path: z.string().default('dead-letter.db').describe('Batches the receiver cannot output (SQLite, 0600), relative to data_dir.'),
              max_bytes: size()
                .prefault('256MiB')
                .describe('Bound of the store (envelopes as received); beyond it the oldest entries are dropped, counted and logged.'),
            })
            .prefault({})
            .describe('Where batches the receiver authenticated but cannot output are set aside, for `edge-agent dead-letter list|show|replay`.'),
        })
        .optional(),
    })
    .superRefine((config, ctx) => {
      const seen = new Set<string>();
      (config.sources as { name: string }[]).forEach((s, i) => {
        if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: ['sources', i, 'name'], message: `duplicate source name ${JSON.stringify(s.name)}` });
        seen.add(s.name);
      });
    });
  return { configSchema, sourceSchema, sinkSchema };
}

export type ConfigSchemas = ReturnType<typeof buildConfigSchemas>;

/**
 * Source and sink entries are typed by their drivers; the core sees only the common fields. (The union is
 * built from the driver list at run time, so TypeScript cannot name each variant here.)
 */
export type SourceConfig = CommonSourceConfig & { stream: string | undefined; [option: string]: unknown };
export type SinkConfig = { type: string; [option: string]: unknown };
type RawConfig = z.output<ConfigSchemas['configSchema']>;
export type Config = Omit<RawConfig, 'sources' | 'sink' | 'receiver'> & {
  sources: SourceConfig[];
  sink: SinkConfig | undefined;
  receiver:
    | (Omit<NonNullable<RawConfig['receiver']>, 'input' | 'topic_output'> & { input: SinkConfig | undefined; topic_output?: SinkConfig | undefined })
    | undefined;
};
