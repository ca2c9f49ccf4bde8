/**
 * A topic of decrypted records for the analytics a company already runs (docs/centre.md, "A topic of
 * records"): any sink driver (Pulsar, MQTT…) configured under `receiver.topic_output` publishes each batch
 * the receiver takes as one message holding its JSON lines, exactly as the file output writes them (each
 * line names its device, stream, epoch and seq, so a consumer can drop a repeat).
 *
 * At least once: the message is published before the batch is acknowledged, so a receiver that dies in
 * between publishes it again. All of one receiver's messages go out as one series (device = the receiver's
 * name, stream `records`, an epoch per process, seq counting up): one producer however many gateways there
 * are, where a series per gateway would open a producer connection per gateway.
 *
 * The sink's own retries are the runtime's on a gateway; here a write that fails for a reason that may clear
 * (broker down) waits for the sink to reconnect and tries again, until the output is closed. What waits is
 * the one batch in hand: the broker holds the rest.
 */
import { randomBytes } from 'node:crypto';
import type { Sink } from '../../contracts/sink.ts';
import type { AgentRecord } from '../../domain/record.ts';
import type { EnvelopeHeader } from '../../envelope/header.ts';
import { AgentError, describeError, isAgentError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { delay as pause } from '../../util/backoff.ts';
import { type RecordOutput, toJsonChunks } from '../output.ts';

const FIRST_WAIT_MS = 200;
const LONGEST_WAIT_MS = 5_000;

export async function topicOutput(sink: Sink, name: string, log: Logger): Promise<RecordOutput> {
  const epoch = randomBytes(8).toString('hex');
  const closing = new AbortController();
  let seq = 0;
  let failing = false;
  await sink.connect();
  return {
    async write(header: EnvelopeHeader, records: AgentRecord[]): Promise<void> {
      let bytes: Buffer;
      try {
        bytes = Buffer.concat(toJsonChunks(header, records));
      } catch (cause) {
        throw new AgentError(
          'OUTPUT_UNWRITABLE',
          `batch ${header.device}/${header.stream}#${header.seq} cannot be written as JSON lines: ${describeError(cause)}`,
          {
            cause,
          },
        );
      }
      const batch = { device: name, stream: 'records', epoch, seq: ++seq, count: records.length, bytes };
      let delay = FIRST_WAIT_MS;
      for (;;) {
        try {
          if (!sink.connected) await sink.waitConnected(closing.signal);
          await sink.write(batch);
          if (failing) log.info('records topic writable again');
          failing = false;
          return;
        } catch (err) {
          if (isAgentError(err, 'SINK_REJECTED')) {
            throw new AgentError(
              'OUTPUT_UNWRITABLE',
              `the records topic refused batch ${header.device}/${header.stream}#${header.seq}: ${describeError(err)}`,
              {
                cause: err,
              },
            );
          }
          if (closing.signal.aborted) throw new AgentError('OUTPUT_FAILED', `records topic closing: ${describeError(err)}`, { cause: err, retryable: true });
          if (!failing) log.warn({ err: describeError(err) }, 'records topic not writable; waiting and trying again');
          failing = true;
          await pause(delay, closing.signal);
          delay = Math.min(delay * 2, LONGEST_WAIT_MS);
        }
      }
    },
    async close() {
      closing.abort();
      await sink.close();
    },
  };
}

/**
 * The primary output (the file, PostgreSQL) with topics beside it. The topics are written first, so a crash
 * after the primary took a batch cannot leave a topic without it; a batch the primary already holds (it can
 * tell: `taken`) skips the topics, so a gateway's re-send does not repeat it there.
 */
export function withTopics(primary: RecordOutput & { taken?(header: EnvelopeHeader): Promise<boolean> }, topics: RecordOutput[]): RecordOutput {
  if (topics.length === 0) return primary;
  return {
    dedupsItself: primary.dedupsItself,
    async write(header, records) {
      if (!(await primary.taken?.(header))) for (const topic of topics) await topic.write(header, records);
      return primary.write(header, records);
    },
    async close() {
      for (const topic of topics) await topic.close();
      await primary.close();
    },
  };
}
