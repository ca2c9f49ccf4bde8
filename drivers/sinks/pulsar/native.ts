/**
 * The `native` transport over the optional `pulsar-client` npm package (the C++ client). It is loaded only
 * when configured. UNTESTED on the machines this project is built on: the package is not installed there
 * (its prebuilt binaries download from a host they cannot reach, and building it needs libpulsar). The
 * package has no types we can rely on, so it is typed loosely here.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import {
  AgentError,
  describeError,
  type Consumer,
  type ConsumerEnv,
  type DriverEnv,
  type IncomingMessage,
  type OutgoingBatch,
  type Sink,
} from '../../../agent/sdk/index.ts';
import { readToken } from '../../common/secrets.ts';
import { seriesName, topicFor, topicPattern } from './naming.ts';
import type { PulsarOptions } from './options.ts';
import { SeriesOrder } from './series-order.ts';

// Kept in a variable so that neither the type checker nor the single-binary bundler resolves it.
const PACKAGE = 'pulsar-client';

// biome-ignore lint/suspicious/noExplicitAny: the optional native client ships no types we can depend on
type Loose = any;

export function nativeUnavailable(cause?: unknown): AgentError {
  return new AgentError(
    'CONFIG_INVALID',
    `transport: native needs the optional npm package ${PACKAGE} (the Pulsar C++ client), and it is not installed or its native library does not load here` +
      ` (its prebuilt binaries are downloaded at install time from a host that may be unreachable, and building it from source needs libpulsar).` +
      ` Use transport: websocket instead, with url: ws://<broker>:8080 (wss://<broker>:8443 with TLS), the broker's web service with webSocketServiceEnabled=true.`,
    { cause },
  );
}

/** Synchronous check, for create(): is the package there at all? */
export function assertNativeInstalled(): void {
  try {
    createRequire(import.meta.url).resolve(PACKAGE);
  } catch (cause) {
    throw nativeUnavailable(cause);
  }
}

/** Loads the package (and with it the native library); the one clear error if that fails. */
export async function loadNative(): Promise<Loose> {
  try {
    // require, not `import()`: the package is CommonJS, and the executable has no loader for dynamic imports.
    const module: Loose = createRequire(import.meta.url)(PACKAGE);
    return module.default ?? module;
  } catch (cause) {
    throw nativeUnavailable(cause);
  }
}

/**
 * The C++ client's options from our config, built without the package (so they can be tested where it is not
 * installed). TLS verifies the broker by default, its host name included, with or without a `tls` section;
 * `tls.ca` is resolved against the config's folder like every other file, not the working directory.
 */
export function nativeClientOptions(options: PulsarOptions, baseDir: string, token: string | undefined) {
  const verify = options.tls?.reject_unauthorized ?? true;
  return {
    serviceUrl: options.url,
    operationTimeoutSeconds: Math.max(1, Math.round(options.connect_timeout / 1000)),
    ...(token ? { token } : {}),
    ...(options.tls?.ca ? { tlsTrustCertsFilePath: resolve(baseDir, options.tls.ca) } : {}),
    tlsAllowInsecureConnection: !verify,
    tlsValidateHostname: verify,
  };
}

function clientConfig(Pulsar: Loose, options: PulsarOptions, baseDir: string): Loose {
  const { token, ...config } = nativeClientOptions(options, baseDir, readToken(options, baseDir, 'Pulsar'));
  return { ...config, ...(token ? { authentication: new Pulsar.AuthenticationToken({ token }) } : {}) };
}

interface NativeSeries {
  topic: string;
  order: SeriesOrder;
  producer: Loose | undefined;
  tail: Promise<void>;
}

export class PulsarNativeSink implements Sink {
  private readonly options: PulsarOptions;
  private readonly env: DriverEnv & { device: string };
  private client: Loose;
  private readonly series = new Map<string, NativeSeries>();
  private isConnected = false;

  constructor(options: PulsarOptions, env: DriverEnv & { device: string }) {
    assertNativeInstalled();
    this.options = options;
    this.env = env;
  }

  async connect(): Promise<void> {
    const Pulsar = await loadNative();
    this.client = new Pulsar.Client(clientConfig(Pulsar, this.options, this.env.baseDir));
    // The C++ client connects lazily and reconnects by itself; a producer failing to open says otherwise.
    this.isConnected = true;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  async waitConnected(): Promise<void> {}

  async write(batch: OutgoingBatch): Promise<void> {
    const name = seriesName(batch);
    const topic = topicFor(this.options, batch.device, batch.stream);
    const key = `${topic}\n${name}`;
    let series = this.series.get(key);
    if (!series) {
      series = { topic, order: new SeriesOrder(name), producer: undefined, tail: Promise.resolve() };
      this.series.set(key, series);
    }
    series.order.attempt(batch.seq);
    const s = series;
    let receipt!: Promise<unknown>;
    const sent = s.tail.then(async () => {
      if (!s.producer) s.order.sessionEnded();
      const plan = s.order.plan(batch.seq);
      if (plan.open) {
        await s.producer?.close().catch(() => {});
        s.producer = undefined;
        try {
          s.producer = await this.client.createProducer({
            topic,
            producerName: plan.producerName,
            initialSequenceId: plan.initialSequenceId,
            sendTimeoutMs: this.options.send_timeout,
            maxPendingMessages: this.options.max_pending,
            batchingEnabled: false,
          });
        } catch (cause) {
          s.order.sessionEnded();
          this.env.log.error({ err: describeError(cause), topic }, 'pulsar refused or could not open the producer; batches stay queued');
          throw new AgentError('SINK_UNAVAILABLE', `cannot open Pulsar producer ${plan.producerName} on ${topic}`, { cause, retryable: true });
        }
      }
      receipt = s.producer.send({
        data: Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength),
        properties: { device: batch.device, stream: batch.stream, seq: String(batch.seq), records: String(batch.count) },
        partitionKey: `${batch.device}/${batch.stream}`,
        sequenceId: batch.seq,
      });
    });
    s.tail = sent.catch(() => {});
    try {
      await sent;
      await receipt;
      s.order.confirmed(batch.seq);
    } catch (cause) {
      // Any failure ends the producer: the next write reopens it under the ordering rules of SeriesOrder.
      const producer = s.producer;
      s.producer = undefined;
      s.order.sessionEnded();
      void producer?.close().catch(() => {});
      if (cause instanceof AgentError) throw cause;
      throw new AgentError('SINK_UNAVAILABLE', `Pulsar did not store ${batch.stream}#${batch.seq} on ${topic}`, { cause, retryable: true });
    }
  }

  async close(): Promise<void> {
    for (const s of this.series.values()) await s.producer?.close().catch(() => {});
    await this.client?.close().catch(() => {});
  }
}

export class PulsarNativeConsumer implements Consumer {
  private readonly options: PulsarOptions;
  private readonly env: ConsumerEnv;
  private client: Loose;
  private consumer: Loose;
  private closing = false;
  private loop: Promise<void> | undefined;

  constructor(options: PulsarOptions, env: ConsumerEnv) {
    assertNativeInstalled();
    this.options = options;
    this.env = env;
  }

  async start(handler: (message: IncomingMessage) => Promise<void>): Promise<void> {
    const Pulsar = await loadNative();
    this.client = new Pulsar.Client(clientConfig(Pulsar, this.options, this.env.baseDir));
    this.consumer = await this.client.subscribe({
      topicsPattern: topicPattern(this.options),
      subscription: this.options.subscription,
      subscriptionType: this.options.subscription_type === 'Key_Shared' ? 'KeyShared' : this.options.subscription_type,
      subscriptionInitialPosition: 'Earliest',
      consumerName: this.options.consumer_name ?? this.env.clientName,
      receiverQueueSize: 100,
      nAckRedeliverTimeoutMs: this.options.reconnect.initial_delay,
    });
    this.loop = (async () => {
      while (!this.closing) {
        let message: Loose;
        try {
          message = await this.consumer.receive(1000);
        } catch {
          continue; // receive timeout (or closing)
        }
        const props = message.getProperties?.() ?? {};
        try {
          await handler({
            bytes: message.getData(),
            origin: `${this.options.tenant}/${this.options.namespace} ${props.device ?? '?'}/${props.stream ?? '?'}#${props.seq ?? '?'}`,
          });
          await this.consumer.acknowledge(message);
        } catch (err) {
          this.env.log.error({ err: describeError(err) }, 'message not acknowledged; asking for redelivery');
          this.consumer.negativeAcknowledge(message);
        }
      }
    })();
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.loop;
    await this.consumer?.close().catch(() => {});
    await this.client?.close().catch(() => {});
  }
}
