// The client is loaded when the consumer starts (see sink.ts).
import type { Consumer as KafkaClient, Message, MessagesStream } from '@platformatic/kafka';
import { describeError, type Consumer, type ConsumerEnv, type IncomingMessage } from '../../../agent/sdk/index.ts';
import { backoffPolicy, Reconnector } from '../../common/reconnect.ts';
import { clientOptions } from './client-options.ts';
import { firstMessage } from './errors.ts';
import { OffsetCommitter } from './offset-committer.ts';
import { headerText } from './naming.ts';
import type { KafkaOptions } from './options.ts';

type Stream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;

/** Messages the stream holds ready beyond the one being handled (with max_fetch_bytes, what bounds memory). */
const STREAM_HIGH_WATER = 16;

/**
 * The centre side: a member of consumer group `group` on the sink's topic. Receivers in one group share the
 * topic's partitions (the broker assigns them and moves them when a receiver comes or goes); each partition
 * holds whole (device, stream) series, in order.
 *
 * Messages are handled one at a time, and a partition's offset is committed only once the handler (the
 * receiver's durable output) resolved for every message before it. If the handler fails, the stream is
 * dropped and consumption starts again from the committed offsets after a backoff: everything not yet
 * committed comes again, and the receiver drops what it already has (dedup by device, stream, epoch, seq).
 */
export class KafkaConsumer implements Consumer {
  private readonly options: KafkaOptions;
  private readonly env: ConsumerEnv;
  private client: KafkaClient<Buffer, Buffer, Buffer, Buffer> | undefined;
  private stream: Stream | undefined;
  private committer: OffsetCommitter | undefined;
  private closing = false;
  private loop: Promise<void> | undefined;
  private readonly reconnector: Reconnector;
  private lastError: string | undefined;

  constructor(options: KafkaOptions, env: ConsumerEnv) {
    this.options = options;
    this.env = env;
    this.reconnector = new Reconnector(backoffPolicy(options.reconnect));
  }

  async start(handler: (message: IncomingMessage) => Promise<void>): Promise<void> {
    const sessionTimeout = this.options.session_timeout;
    const { Consumer } = await import('@platformatic/kafka');
    const client = new Consumer<Buffer, Buffer, Buffer, Buffer>({
      ...clientOptions(this.options, this.env.baseDir, this.options.client_id ?? this.env.clientName, 'kafka receiver input'),
      groupId: this.options.group,
      // Where the broker allows it (auto.create.topics.enable), a receiver started before any gateway creates
      // the topic instead of waiting for the first batch; elsewhere it retries until the topic exists.
      autocreateTopics: true,
      autocommit: false,
      sessionTimeout,
      heartbeatInterval: Math.max(500, Math.floor(sessionTimeout / 3)),
      rebalanceTimeout: Math.max(sessionTimeout, 10_000),
      maxBytes: this.options.max_fetch_bytes,
      maxBytesPerPartition: this.options.max_fetch_bytes,
      maxWaitTime: 500,
      highWaterMark: STREAM_HIGH_WATER,
    });
    this.client = client;
    client.on('consumer:group:join', (joined) => {
      const partitions = (joined.assignments ?? []).flatMap((a) => a.partitions.map((p) => `${a.topic}[${p}]`));
      this.env.log.info({ group: this.options.group, member: joined.memberId, partitions }, 'kafka group assignment');
    });
    this.committer = new OffsetCommitter(client, this.env.log);
    let joined!: () => void;
    const subscribed = new Promise<void>((resolve) => (joined = resolve));
    this.loop = this.run(handler, joined);
    // Resolve once consuming, so a caller can start producers knowing the group is joined; but never hang
    // start-up on a cluster that is down: consumption then starts when it comes back.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), this.options.connect_timeout)));
    if ((await Promise.race([subscribed, late])) === 'late') {
      this.env.log.warn({ brokers: this.options.brokers, group: this.options.group }, 'kafka not reachable yet; will consume when it is');
    }
    clearTimeout(timer);
  }

  /** Consume, and after any failure consume again from the committed offsets, until closed. */
  private async run(handler: (message: IncomingMessage) => Promise<void>, joined: () => void): Promise<void> {
    while (!this.closing) {
      try {
        const stream = await this.client!.consume({ topics: [this.options.topic], mode: 'committed', fallbackMode: 'earliest' });
        // Errors reach the loop through the iterator; one raised while the stream is still being set up (the
        // client closed under it) must not become an uncaught exception.
        stream.on('error', () => {});
        this.stream = stream;
        if (this.closing) {
          await this.dropStream();
          break;
        }
        this.lastError = undefined;
        this.reconnector.succeeded();
        this.env.log.info({ topic: this.options.topic, group: this.options.group }, 'kafka consumer joined its group');
        joined();
        for await (const message of stream as AsyncIterable<Message<Buffer, Buffer, Buffer, Buffer>>) {
          if (this.closing) break;
          await handler({ bytes: message.value, origin: origin(message) });
          this.committer!.handled(message);
        }
        if (!this.closing) throw new Error('the message stream ended');
      } catch (err) {
        if (this.closing) break;
        const text = firstMessage(err);
        if (text !== this.lastError) {
          this.env.problems.report(
            'kafka_consumer_restart',
            'kafka consumption stopped; resuming from the committed offsets (uncommitted messages come again)',
            { err: describeError(err).slice(0, 300), group: this.options.group },
            { level: 'error' },
          );
        }
        this.lastError = text;
        await this.dropStream();
        await new Promise<void>((resolve) => {
          if (this.reconnector.schedule(resolve) === undefined) resolve();
        });
      }
    }
  }

  private async dropStream(): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    await this.committer?.flush();
    await stream?.close().catch(() => {});
  }

  async close(): Promise<void> {
    this.closing = true;
    this.reconnector.cancel();
    // First end the loop (closing the stream ends its iteration), then the client: a client closed while the
    // loop is still opening a stream would make that stream fail with nobody listening.
    await this.dropStream();
    await withTimeout(this.loop, 5_000);
    await this.dropStream();
    // Leaves the group, so the others take its partitions at once instead of after session_timeout.
    await withTimeout(
      this.client?.close(true).catch(() => {}),
      5_000,
    );
  }
}

async function withTimeout(promise: Promise<unknown> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** `topic[partition]@offset device/stream#seq`, for logs; the device and stream are the message's own headers. */
function origin(message: Message<Buffer, Buffer, Buffer, Buffer>): string {
  const h = message.headers;
  return `${message.topic}[${message.partition}]@${message.offset} ${headerText(h, 'device')}/${headerText(h, 'stream')}#${headerText(h, 'seq')}`;
}
