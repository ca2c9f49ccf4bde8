/**
 * Which outputs the receiver writes to, from its config section (docs/centre.md, "Outputs"). An output is a
 * `RecordOutput` (agent/receiver/output.ts): the primary one (JSON lines, a Kafka topic of records, or PostgreSQL, which keeps its own
 * dedup marks in the same transaction as its records and so sets `dedupsItself`), and topics beside it
 * (`receiver.topic_output`, any sink driver). A new kind of primary output is one more branch here.
 */
import { resolve } from 'node:path';
import type { Config, SinkConfig } from '../../config/schema.ts';
import type { Sink } from '../../contracts/sink.ts';
import type { EnvelopeHeader } from '../../envelope/header.ts';
import type { Logger } from '../../log.ts';
import { jsonLinesOutput, type RecordOutput } from '../output.ts';
import { AgentError } from '../../errors.ts';
import { topicOutput, withTopics } from './topic.ts';

export type ReceiverSection = NonNullable<Config['receiver']>;

export interface OutputContext {
  baseDir: string;
  log: Logger;
  /** Makes a sink of the config's driver catalog, for `topic_output`. */
  makeSink(config: SinkConfig): Promise<Sink>;
  /** The receiver's name in the records topic's series (its input's client name). */
  name: string;
  /** Aborted when a stop is requested while an output still waits for its server at start. */
  signal?: AbortSignal;
}

export async function createOutput(section: ReceiverSection, context: OutputContext): Promise<RecordOutput> {
  const primary = await primaryOutput(section, context.baseDir, context.log, context.signal);
  const topics = section.topic_output
    ? [await topicOutput(await context.makeSink(section.topic_output), context.name, context.log.child({ output: 'topic' }))]
    : [];
  return withTopics(primary, topics);
}

/** The file or PostgreSQL, without topics (what `dead-letter replay` writes to). */
export async function primaryOutput(
  section: ReceiverSection,
  baseDir: string,
  log: Logger,
  signal?: AbortSignal,
): Promise<RecordOutput & { taken?(header: EnvelopeHeader): Promise<boolean> }> {
  if (section.postgres && section.kafka_output) {
    throw new AgentError('CONFIG_INVALID', 'receiver: give one primary output, postgres or kafka_output, not both');
  }
  // Loaded only when configured: the Kafka client is large, and most receivers do not use it.
  if (section.kafka_output) return (await import('../kafka-output.ts')).kafkaOutput(section.kafka_output, baseDir);
  // Likewise PostgreSQL's client.
  return section.postgres
    ? await (await import('./postgres.ts')).postgresOutput(section.postgres, {
        window: section.dedup_window,
        epochs: section.dedup_epochs,
        streamsPerDevice: section.max_streams_per_device,
        retentionMs: section.dedup_retention,
        baseDir,
        log: log.child({ output: 'postgres' }),
        signal,
      })
    : await jsonLinesOutput(section.output === '-' ? '-' : resolve(baseDir, section.output));
}
