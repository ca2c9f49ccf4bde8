// The client is loaded when a Kafka sink connects: an agent without one never pays its start-up or memory.
import type { Broker, ConnectionPoolEventPayload, MessageToProduce, Producer } from '@platformatic/kafka';
import { AgentError, type DriverEnv, type OutgoingBatch, type Sink } from '../../../agent/sdk/index.ts';
import { ConnectionWaiters } from '../../common/connection-waiters.ts';
import { backoffPolicy, Reconnector } from '../../common/reconnect.ts';
import { ByteWindow } from './byte-window.ts';
import { clientOptions } from './client-options.ts';
import { mapConnectError, mapProduceError, type MappedFailure } from './errors.ts';
import { batchHeaders, batchKey } from './naming.ts';
import type { KafkaOptions } from './options.ts';

type Message = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;

interface PendingWrite {
  message: Message;
  bytes: number;
  what: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const brokerKey = (broker: Broker) => `${broker.host}:${broker.port}`;

/** How long close() waits for the client to finish politely before it lets go. */
const CLOSE_GRACE_MS = 3_000;

/**
 * Sends each sealed batch as one Kafka message, keyed `<device>/<stream>` (one series stays in one partition,
 * in order), with an idempotent producer (acks=all; the client's own retries reuse the sequence number, so a
 * retried produce is stored once). `write` resolves on the broker's acknowledgement only.
 *
 * The client connects lazily and retries inside each request; this class adds what the runtime needs on top:
 * a `connected` flag from the client's broker events, a probe with jittered backoff while no broker answers,
 * and a bound in bytes on what is awaiting acknowledgement.
 */
export class KafkaSink implements Sink {
  private producer: Producer | undefined;
  private readonly options: KafkaOptions;
  private readonly env: DriverEnv & { device: string };
  private readonly waiters = new ConnectionWaiters();
  private readonly reconnector: Reconnector;
  private readonly window: ByteWindow;
  private readonly closing = new AbortController();
  private brokersUp = 0;
  private probing = false;
  /** Why the last probe failed (cleared once a broker answers): logged once, and named by refused writes. */
  private lastProbeFailure: MappedFailure | undefined;
  private readonly pending: PendingWrite[] = [];
  /** Brokers (host:port) whose connection closed: the next connection to one is a reconnect. */
  private readonly lostBrokers = new Set<string>();
  private sending = false;

  constructor(options: KafkaOptions, env: DriverEnv & { device: string }) {
    this.options = options;
    this.env = env;
    this.reconnector = new Reconnector(backoffPolicy(options.reconnect));
    this.window = new ByteWindow(options.max_in_flight_bytes);
  }

  async connect(): Promise<void> {
    const clientId = this.options.client_id ?? `edge-agent-${this.env.device}`;
    const { Producer, compatibilityPartitioner } = await import('@platformatic/kafka');
    const producer = new Producer({
      ...clientOptions(this.options, this.env.baseDir, clientId, 'kafka sink'),
      idempotent: true,
      acks: -1,
      autocreateTopics: true,
      // Java-compatible key hashing: a series lands where the Java client would put it too.
      partitioner: compatibilityPartitioner,
    });
    this.producer = producer;
    // A connection to a broker after the one before it closed is a reconnect, counted exactly
    // (edge_sink_events_total{event="reconnects"}); the client keeps one connection per broker address.
    producer.on('client:broker:connect', ({ broker }: ConnectionPoolEventPayload) => {
      if (this.lostBrokers.delete(brokerKey(broker))) this.env.counters.add('reconnects');
      this.brokersUp++;
      this.reconnector.succeeded();
      this.waiters.wakeAll();
    });
    producer.on('client:broker:disconnect', ({ broker }: ConnectionPoolEventPayload) => {
      if (!this.closing.signal.aborted) this.lostBrokers.add(brokerKey(broker));
      this.brokersUp = Math.max(0, this.brokersUp - 1);
      if (this.brokersUp === 0) this.scheduleProbe();
    });
    producer.on('client:broker:failed', () => {
      if (this.brokersUp === 0) this.scheduleProbe();
    });
    await this.probe();
  }

  /** One metadata request: it opens a connection to a bootstrap broker if there is none. */
  private async probe(): Promise<void> {
    const producer = this.producer;
    if (!producer || this.closing.signal.aborted || this.probing) return;
    this.probing = true;
    try {
      await producer.metadata({ topics: [this.options.topic], autocreateTopics: true, forceUpdate: true });
      this.lastProbeFailure = undefined;
      this.env.log.info({ brokers: this.options.brokers, topic: this.options.topic }, 'kafka connected');
    } catch (err) {
      // The reason is mapped, not the top of the client's error ("metadata failed 3 times."): a wrong password
      // or an untrusted broker certificate must read as such, and be reported as the configuration problem it is.
      const failure = mapConnectError(err);
      if (failure.error.message !== this.lastProbeFailure?.error.message) {
        if (failure.configuration !== undefined) {
          this.env.problems.report('kafka_refused_by_configuration', `cannot connect (${failure.configuration}); batches stay queued`, {
            brokers: this.options.brokers,
          });
        } else {
          this.env.log.warn({ err: failure.error.message, brokers: this.options.brokers }, 'kafka not reachable; retrying');
        }
      }
      this.lastProbeFailure = failure;
      this.probing = false;
      this.scheduleProbe();
      return;
    }
    this.probing = false;
  }

  private scheduleProbe(): void {
    if (this.closing.signal.aborted) return;
    this.reconnector.schedule(() => this.probe());
  }

  get connected(): boolean {
    return this.brokersUp > 0;
  }

  waitConnected(signal: AbortSignal): Promise<void> {
    return this.waiters.wait(this.connected || this.closing.signal.aborted, signal);
  }

  async write(batch: OutgoingBatch): Promise<void> {
    const producer = this.producer;
    const what = `${batch.stream}#${batch.seq}`;
    if (!producer || !this.connected) {
      // Named with the probe's reason, so a batch held back by a wrong password does not read as a network outage.
      const failure = this.lastProbeFailure?.error;
      throw new AgentError(failure?.code ?? 'SINK_UNAVAILABLE', `${what} not sent: ${failure?.message ?? 'Kafka not connected'}`, { retryable: true });
    }
    const bytes = batch.bytes.byteLength;
    try {
      await this.window.acquire(bytes, this.closing.signal);
    } catch (cause) {
      throw new AgentError('SINK_UNAVAILABLE', `${what} not sent: the sink is closing`, { cause, retryable: true });
    }
    try {
      await new Promise<void>((resolve, reject) => {
        this.pending.push({ message: this.messageOf(batch), bytes, what, resolve, reject });
        this.pump();
      });
    } finally {
      this.window.release(bytes);
    }
  }

  private messageOf(batch: OutgoingBatch): Message {
    return {
      topic: this.options.topic,
      key: batchKey(batch.device, batch.stream),
      value: Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength),
      headers: batchHeaders(batch),
    };
  }

  /**
   * One produce request at a time (the idempotent producer keeps one in flight per broker anyway), carrying
   * every batch written meanwhile, up to max_request_bytes: the broker stores and acknowledges them together
   * (one fsync, one round trip) instead of one by one.
   */
  private pump(): void {
    const producer = this.producer;
    if (this.sending || this.pending.length === 0 || !producer) return;
    const group: PendingWrite[] = [];
    let bytes = 0;
    while (this.pending.length > 0 && (group.length === 0 || bytes + this.pending[0]!.bytes <= this.options.max_request_bytes)) {
      const next = this.pending.shift()!;
      bytes += next.bytes;
      group.push(next);
    }
    this.sending = true;
    this.produce(producer, group).finally(() => {
      this.sending = false;
      this.pump();
    });
  }

  private async produce(producer: Producer, group: PendingWrite[]): Promise<void> {
    try {
      await producer.send({ messages: group.map((w) => w.message) });
      for (const w of group) w.resolve();
      return;
    } catch (err) {
      const failure = mapProduceError(err, group.length === 1 ? group[0]!.what : `${group.length} batches`);
      // A refusal of one batch (too large, invalid) must not set aside the others of its request: each is
      // sent alone for its own verdict.
      if (!failure.error.retryable && group.length > 1) {
        for (const w of group) await this.produce(producer, [w]);
        return;
      }
      if (failure.configuration !== undefined) {
        this.env.problems.report('kafka_refused_by_configuration', `broker refuses batches (${failure.configuration}); they stay queued`, {
          topic: this.options.topic,
        });
      }
      for (const w of group) w.reject(group.length === 1 ? failure.error : mapProduceError(err, w.what).error);
    }
  }

  async close(): Promise<void> {
    const closing = new AgentError('SINK_UNAVAILABLE', 'kafka sink closing', { retryable: true });
    this.closing.abort(closing);
    for (const w of this.pending.splice(0)) w.reject(closing);
    this.reconnector.cancel();
    this.waiters.wakeAll();
    const producer = this.producer;
    if (!producer) return;
    // The client may be waiting out its retries against a broker that is gone: do not hang the shutdown on it.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([producer.close().catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
  }
}
