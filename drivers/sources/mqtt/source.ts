import type { IPublishPacket, MqttClient } from 'mqtt';
import {
  AgentError,
  connectMqtt,
  describeError,
  type AgentRecord,
  type Cursor,
  type DriverEnv,
  mqttConnectOptions,
  type ServiceSource,
  type SourceContext,
} from '../../../agent/sdk/index.ts';
import { AckAfterCommit, type HeldAck } from './ack-after-commit.ts';
import { subscriberClientOptions } from './client-options.ts';
import type { MqttSourceOptions } from './options.ts';
import { decodePayload } from './payload.ts';
import { isRelease, Qos2IncomingStore, Qos2Ledger } from './qos2.ts';
import { DedupWindow } from './dedup.ts';
import { fixedDelay, Reconnector } from '../../common/reconnect.ts';
import { TwinClientWatch } from '../../common/twin-client.ts';

/** How long `stop` waits for received messages to commit (and be acknowledged) before it just disconnects. */
const STOP_GRACE_MS = 5_000;

/** Messages received close together, handed to the queue in one emit; acknowledged together after its commit. */
interface Batch {
  records: AgentRecord[];
  acks: HeldAck[];
  messages: number;
  /** What its messages count against max_pending_bytes. */
  bytes: number;
}

/** What a message counts against max_pending_bytes besides its payload: its record's and acknowledgement's keep. */
const MESSAGE_OVERHEAD = 128;

/**
 * Bytes a message holds until its commit: its payload and topic when it made a record (the decoded record is
 * of the same order), the fixed overhead alone when it made none (a duplicate, a payload refused).
 */
function heldBytes(packet: IPublishPacket, record: AgentRecord | undefined): number {
  if (record === undefined) return MESSAGE_OVERHEAD;
  const payload = packet.payload;
  return MESSAGE_OVERHEAD + packet.topic.length + (typeof payload === 'string' ? payload.length : payload.byteLength);
}

/**
 * Subscribes on a local broker and turns each message into a record (`topic`, `qos`, `retain`, `ts` and the
 * payload's fields). QoS 1 messages are acknowledged only after their records are committed (see
 * ack-after-commit.ts), so a message is either in the queue or still on the broker, whatever crashes.
 * QoS 2 messages are committed once however often the broker sends them (qos2.ts).
 */
export class MqttSource implements ServiceSource {
  private client: MqttClient | undefined;
  private acks: AckAfterCommit | undefined;
  private qos2: Qos2Ledger | undefined;
  private dedup: DedupWindow | undefined;
  private ctx: SourceContext | undefined;
  private batch: Batch | undefined;
  private batchTimer: NodeJS.Timeout | undefined;
  /** Settles when the last batch's PUBACKs are written: batches release in arrival order. */
  private lastRelease: Promise<void> = Promise.resolve();
  /** Messages received whose batch is not yet released. */
  private uncommitted = 0;
  /** Their payload bytes (plus a fixed cost per message), bounded by max_pending_bytes. */
  private uncommittedBytes = 0;
  /** The completion of the one message mqtt.js waits on while too many are uncommitted (it reads no further). */
  private paused: (() => void) | undefined;
  private stopping = false;
  private failed = false;
  private reconnector: Reconnector | undefined;

  private readonly config: MqttSourceOptions & { name: string };
  private readonly env: DriverEnv;

  constructor(config: MqttSourceOptions & { name: string }, env: DriverEnv) {
    this.config = config;
    this.env = env;
  }

  /** The live mqtt.js client, for diagnostics and tests (they watch which PUBACKs leave and when). */
  get mqttClient(): MqttClient | undefined {
    return this.client;
  }

  async start(ctx: SourceContext): Promise<void> {
    const { url, name } = this.config;
    if (url === 'embedded') {
      throw new AgentError('CONFIG_INVALID', `source ${name}: url \`embedded\` was not replaced by the embedded broker's address (is broker.embedded on?)`);
    }
    this.ctx = ctx;
    // Not `edge-agent-<device>`: that is the sink's, and both may use the same (embedded) broker.
    const clientId = this.config.client_id ?? `edge-agent-source-${name}`;
    this.qos2 = new Qos2Ledger(`${url} ${clientId}`, ctx.cursor);
    if (this.config.dedup) this.dedup = new DedupWindow(this.config.dedup, ctx.cursor);
    const incomingStore = new Qos2IncomingStore((packet, sendPubrec) => this.onQos2Publish(packet, sendPubrec));
    const client = connectMqtt(mqttConnectOptions(url, { ...subscriberClientOptions(this.config, this.env.baseDir, clientId), incomingStore }));
    this.client = client;
    // mqtt.js reconnects on its own only when given a period; it is given none, and the one shared policy
    // drives it instead, at the fixed reconnect_delay this source's config promises.
    const reconnector = new Reconnector(fixedDelay(this.config.reconnect_delay));
    this.reconnector = reconnector;
    this.acks = new AckAfterCommit(client);
    // mqtt.js drops the connection when more inbound QoS 2 messages than our Receive Maximum await PUBREL.
    // Mosquitto (2.0.11 here) resends every unfinished message of a resumed session on top of its quota, so
    // the very reconnect meant to finish them would be cut again, and again. Memory stays bounded by
    // max_pending without that check: beyond it this source stops reading (see accept).
    (client as unknown as { _receiveMaximum: number })._receiveMaximum = 65_535;
    // mqtt.js has emitted 'message' already; handleMessage is where it waits for us before acknowledging.
    client.handleMessage = (packet, done) => (isRelease(packet) ? this.onQos2Release(packet.messageId!, done) : this.onPublish(packet, done));
    client.on('reconnect', () => ctx.counters.add('reconnects'));
    client.on('error', (err) => ctx.log.warn({ err: describeError(err), url }, 'mqtt error'));
    // Another subscriber with this client id (the same config on two gateways) would take the session over
    // and back in a loop: named as such, not left to look like connection resets.
    const twin = new TwinClientWatch(clientId, ctx.problems, `another gateway with source ${name}? set client_id`);
    client.on('disconnect', (packet) => twin.disconnected(packet));
    client.on('close', () => {
      twin.closed(this.stopping);
      if (this.stopping) return;
      // Once per outage (the first failure since the last connect), as mqtt.js's own 'offline' was.
      if (reconnector.attempt === 0) ctx.log.warn({ url }, 'mqtt connection lost; the broker keeps the session while reconnecting');
      reconnector.schedule(() => {
        // Given no stores, mqtt.js's reconnect puts its default ones in place: QoS 2 would then bypass the
        // committed packet ids and be acknowledged before its commit.
        if (!this.stopping && !client.connected) client.reconnect({ incomingStore, outgoingStore: client.outgoingStore });
      });
    });

    const { promise: firstSubscription, resolve: subscribed, reject: refused } = Promise.withResolvers<void>();
    client.on('connect', (connack) => {
      twin.connected();
      reconnector.succeeded();
      // Small PUBACKs must not wait for Nagle (and the broker's delayed ACK).
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      this.forgetOldSession(connack.sessionPresent)
        .then(() => this.subscribe(connack.sessionPresent))
        .then(
          () => subscribed(),
          (err) => {
            ctx.counters.add('subscribe_errors');
            ctx.log.error({ err: describeError(err), url }, 'subscription refused');
            refused(err);
          },
        );
    });
    const failedToConnect = (err: Error) => refused(err);
    client.once('error', failedToConnect);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no connection and subscription within ${this.config.connect_timeout} ms`)), this.config.connect_timeout);
    });
    try {
      await Promise.race([firstSubscription, late]);
    } catch (cause) {
      this.stopping = true;
      reconnector.cancel();
      await client.endAsync(true).catch(() => {});
      throw new AgentError('SOURCE_FAILED', `source ${name}: cannot subscribe at MQTT broker ${url}`, { cause, retryable: true });
    } finally {
      clearTimeout(timer);
      client.removeListener('error', failedToConnect);
    }
    ctx.log.info({ url, clientId, topics: this.config.topics.map((t) => t.filter) }, 'mqtt source subscribed');
  }

  /**
   * Subscribes at every connect, so a changed topic list takes effect even on a resumed session. On a resumed
   * MQTT 5 session, retained messages are not sent again for subscriptions that already exist (retain handling 1).
   */
  private subscribe(sessionPresent: boolean): Promise<unknown> {
    const resumed = sessionPresent && this.config.protocol_version === 5;
    const map = Object.fromEntries(this.config.topics.map((t) => [t.filter, { qos: t.qos, ...(resumed ? { rh: 1 } : {}) }]));
    return this.client!.subscribeAsync(map);
  }

  /**
   * A fresh session (not resumed) holds none of the QoS 2 ids committed for the old one: they are forgotten,
   * and that is committed before subscribing, so no new message can be taken for a repeat of an old one.
   */
  private async forgetOldSession(sessionPresent: boolean): Promise<void> {
    const qos2 = this.qos2!;
    if (sessionPresent || qos2.size === 0) return;
    this.ctx!.log.info({ ids: qos2.size }, 'broker session not resumed: QoS 2 packet ids of the old session forgotten');
    qos2.clear();
    this.flush(true);
    await this.lastRelease;
  }

  private onPublish(packet: IPublishPacket, done: () => void): void {
    // Stopping or failed: no record, no PUBACK. The broker delivers the message again to the next session.
    if (this.closed()) return;
    const held = packet.qos === 1 ? this.acks!.receive(packet) : undefined;
    if (packet.dup) this.ctx!.counters.add('redelivered');
    const record = this.toRecord(packet);
    const bytes = heldBytes(packet, record);
    if (this.dedup && record) {
      const key = this.dedup.keyOf(packet, record);
      if (key === undefined) this.ctx!.counters.add('dedup_no_key');
      else if (this.dedup.has(key)) {
        // Acknowledged once the earlier copy's commit is done (this batch releases after it), without a record.
        this.ctx!.counters.add('duplicates_dropped');
        this.accept(held, undefined, done, MESSAGE_OVERHEAD);
        return;
      } else this.dedup.add(key);
    }
    this.accept(held, record, done, bytes);
  }

  /** A QoS 2 PUBLISH (from mqtt.js's incoming store): a new message, or one already committed sent again. */
  private onQos2Publish(packet: IPublishPacket, sendPubrec: () => void): void {
    if (this.closed()) return;
    const ctx = this.ctx!;
    const held = this.acks!.receive(packet, 'pubrec');
    if (packet.dup) ctx.counters.add('redelivered');
    const id = packet.messageId!;
    if (this.qos2!.has(id)) {
      // Committed already (or on its way, in an earlier emit): PUBREC once that commit is done, no record.
      ctx.counters.add('qos2_repeats_dropped');
      this.accept(held, undefined, sendPubrec, MESSAGE_OVERHEAD);
      return;
    }
    this.qos2!.add(id);
    const record = this.toRecord(packet);
    this.accept(held, record, sendPubrec, heldBytes(packet, record));
  }

  /** PUBREL: the broker will not send this message again. PUBCOMP once the id's removal is committed. */
  private onQos2Release(id: number, done: () => void): void {
    if (this.closed()) return;
    const held = this.acks!.receive({ messageId: id }, 'pubcomp');
    this.qos2!.release(id);
    this.accept(held, undefined, done, MESSAGE_OVERHEAD);
  }

  private closed(): boolean {
    return this.stopping || this.failed || this.ctx!.signal.aborted;
  }

  /**
   * Adds a packet's record (if any) to the batch, and its held acknowledgement (if any), written once the
   * batch is committed. `done` lets mqtt.js produce the acknowledgement and read on.
   */
  private accept(held: HeldAck | undefined, record: AgentRecord | undefined, done: () => void, bytes: number): void {
    const batch = (this.batch ??= { records: [], acks: [], messages: 0, bytes: 0 });
    if (record) batch.records.push(record);
    if (held) batch.acks.push(held);
    batch.messages++;
    batch.bytes += bytes;
    this.uncommitted++;
    this.uncommittedBytes += bytes;
    const full = this.full();
    // Full by bytes: the batch goes now rather than after batch_wait, so the commit that makes room is not late.
    if (batch.messages >= this.config.batch_max || full) this.flush();
    else this.batchTimer ??= setTimeout(() => this.flush(), this.config.batch_wait);

    const complete = () => {
      try {
        if (held) this.acks!.complete(held, done);
        else done();
      } catch (err) {
        this.fail(err);
      }
    };
    // Backpressure: with too many messages or bytes awaiting their commit, mqtt.js reads nothing more (and TCP
    // pushes back on the broker) until a commit makes room; nothing is acknowledged before its commit, so the
    // broker keeps what waits. QoS 1 rarely gets here by count, the broker's window holds it first.
    if (full) this.paused = complete;
    else complete();
  }

  /** Too much received and not committed: by count (max_pending) or by payload bytes (max_pending_bytes). */
  private full(): boolean {
    return this.uncommitted >= this.config.max_pending || this.uncommittedBytes >= this.config.max_pending_bytes;
  }

  private toRecord(packet: IPublishPacket): AgentRecord | undefined {
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    if (payload.byteLength > this.config.max_payload_bytes) {
      // Acknowledged without a record (like a payload that does not decode): refusing it would have the
      // broker redeliver it forever and wedge the subscription behind it.
      this.ctx!.problems.report(
        'payload_too_large',
        'message payload larger than max_payload_bytes; dropped and acknowledged',
        { topic: packet.topic, bytes: payload.byteLength, max_payload_bytes: this.config.max_payload_bytes },
        { key: packet.topic },
      );
      return undefined;
    }
    const decoded = decodePayload(payload, this.config.payload);
    if (!decoded.ok) {
      this.countBad(decoded.reason, packet.topic);
      return undefined;
    }
    const record = decoded.fields;
    // The payload's own `ts` (ms since epoch) is the reading's time; otherwise the time it arrived here.
    const ts = typeof record.ts === 'number' && Number.isFinite(record.ts) ? record.ts : Date.now();
    // Topic aliases are never sent to us (we advertise no Topic Alias Maximum), so packet.topic is complete.
    record.topic = packet.topic;
    record.qos = packet.qos;
    record.retain = packet.retain;
    record.ts = ts;
    const props = packet.properties;
    if (this.config.mqtt5_properties && props) {
      if (props.userProperties) record.user_properties = { ...props.userProperties }; // mqtt.js gives a null-prototype object
      if (props.messageExpiryInterval !== undefined) record.message_expiry = props.messageExpiryInterval;
      if (props.contentType !== undefined) record.content_type = props.contentType;
    }
    return record;
  }

  /** Counted always; logged through the rate-limited reporter so a misbehaving device cannot flood the log. */
  private countBad(reason: string, topic: string): void {
    this.ctx!.problems.report(reason, 'message payload not accepted; dropped and acknowledged', { reason, topic });
  }

  /** Hands the current batch to the queue; its PUBACKs go out after its commit and after every earlier batch's. */
  private flush(evenIfEmpty = false): void {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    // After a failed commit nothing more is emitted: a later commit must not carry QoS 2 ids whose records
    // were in the failed one.
    if (this.failed) return;
    const batch = this.batch ?? (evenIfEmpty ? { records: [], acks: [], messages: 0, bytes: 0 } : undefined);
    if (!batch) return;
    this.batch = undefined;
    // The QoS 2 ids and the dedup window go with the records they speak of, in the same transaction.
    const cursor = this.qos2!.changed || this.dedup?.changed ? this.cursor() : undefined;
    const committed = batch.records.length > 0 || cursor !== undefined ? this.ctx!.emit(batch.records, cursor) : Promise.resolve();
    committed.catch(() => {}); // observed below; avoids an unhandled rejection while an earlier batch is pending
    this.lastRelease = Promise.all([this.lastRelease, committed])
      .then(
        () => {
          if (!this.failed) this.acks!.release(batch.acks);
        },
        (err) => this.fail(err),
      )
      .finally(() => {
        this.uncommitted -= batch.messages;
        this.uncommittedBytes -= batch.bytes;
        const resume = this.paused;
        if (resume && !this.full()) {
          this.paused = undefined;
          resume();
        }
      });
  }

  private cursor(): Cursor {
    const state = this.qos2!.cursor() as { [key: string]: Cursor };
    if (this.dedup) state.seen = this.dedup.encode();
    return state;
  }

  /**
   * Records could not be committed (or acknowledgements cannot be held back). Nothing more is acknowledged;
   * the runtime restarts the source, and the broker redelivers every unacknowledged message to the new session.
   */
  private fail(cause: unknown): void {
    if (this.failed) return;
    this.failed = true;
    if (this.stopping) return;
    this.ctx!.fail(
      new AgentError('SOURCE_FAILED', `source ${this.config.name}: messages from ${this.config.url} not committed; they stay on the broker`, {
        cause,
        retryable: true,
      }),
    );
  }

  async stop(): Promise<void> {
    const client = this.client;
    if (!client || this.stopping) return;
    this.stopping = true;
    this.reconnector?.cancel();
    // What was received is committed and acknowledged before leaving, so a clean stop leaves no duplicates.
    if (!this.failed) this.flush();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS)));
    await Promise.race([this.lastRelease, grace]);
    clearTimeout(timer);
    this.paused = undefined;
    // A clean DISCONNECT goes out after the PUBACKs just written; on a dead connection there is nothing to flush.
    await client.endAsync(!client.connected).catch(() => {});
    if (this.acks && this.acks.dropped > 0)
      this.ctx?.log.info({ dropped: this.acks.dropped }, 'acknowledgements dropped with their connection; the broker redelivers those messages');
  }
}
