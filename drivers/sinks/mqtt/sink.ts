import type { IPublishPacket, Packet } from 'mqtt';
import { AgentError, describeError, type CentreAcks, type DriverEnv, type OutgoingBatch, type Sink } from '../../../agent/sdk/index.ts';
import { clientOptions } from './client-options.ts';
import { MqttConnection } from './connection.ts';
import { backoffPolicy } from '../../common/reconnect.ts';
import { ackSubscription, centreOnlineTopic, MAX_ACK_BYTES } from './ack-topics.ts';
import type { MqttOptions } from './options.ts';

// MQTT 5 PUBACK reasons that say the broker's or the sink's configuration refuses where batches go: every
// batch alike, until an operator fixes the ACL or the topic. They were once taken as the batch's fault and
// set it aside, so one ACL mistake deleted the whole queue; now the data waits (docs/delivery.md).
const CONFIGURATION_REASONS = new Map([
  [0x87, 'not authorized: check the broker ACL for this client and topic'],
  [0x90, 'topic name invalid: check sink.topic_prefix'],
]);
/** MQTT 5 PUBACK 0x10: accepted, and discarded, since nobody subscribes to the topic. mqtt.js reports it as success. */
const NO_MATCHING_SUBSCRIBERS = 0x10;

export class MqttSink implements Sink {
  private connection: MqttConnection | undefined;

  private readonly options: MqttOptions;

  private readonly env: DriverEnv & { device: string };
  /** PUBACK reason codes by packet id, noted as each PUBACK arrives (mqtt.js hands its callback the PUBLISH). */
  private readonly pubackReasons = new Map<number, number>();
  private ackHandler: ((bytes: Uint8Array, origin: string) => void) | undefined;
  readonly centreAcks: CentreAcks | undefined;

  constructor(
    options: MqttOptions,

    env: DriverEnv & { device: string },
  ) {
    this.options = options;

    this.env = env;
    this.centreAcks = options.acknowledged_by === 'centre' ? { onAck: (handler) => (this.ackHandler = handler) } : undefined;
  }

  async connect(): Promise<void> {
    const clientId = this.options.client_id ?? `edge-agent-${this.env.device}`;
    const connection = new MqttConnection(
      this.options.url,
      // The acknowledgement subscription is made on every connect below; mqtt.js must not repeat it.
      { ...clientOptions(this.options, this.env.baseDir, clientId), resubscribe: false },
      backoffPolicy(this.options.reconnect),
      this.env.log,
      this.env.problems,
      this.env.wire,
    );
    this.connection = connection;
    // Every connect after the first is a reconnect: counted exactly (edge_sink_events_total{event="reconnects"}).
    let connects = 0;
    connection.client.on('connect', () => {
      if (++connects > 1) this.env.counters.add('reconnects');
    });
    connection.client.on('packetreceive', (packet: Packet) => {
      if (packet.cmd === 'puback' && packet.messageId !== undefined && packet.reasonCode !== undefined && packet.reasonCode !== 0) {
        this.pubackReasons.set(packet.messageId, packet.reasonCode);
      }
    });
    connection.client.on('close', () => this.pubackReasons.clear());
    if (this.centreAcks) this.subscribeToAcks(connection);
    if (this.env.centreOnline) this.watchCentre(connection, this.env.centreOnline);
  }

  /** The receiver's retained online state, for the governor's centre gate. */
  private watchCentre(connection: MqttConnection, report: (online: boolean) => void): void {
    const topic = centreOnlineTopic(this.options.topic_prefix);
    connection.client.on('connect', () => {
      connection.client.subscribe(topic, { qos: 1 }, (err) => {
        if (err) this.env.problems.report('centre_subscribe_failed', 'cannot subscribe to the centre online state', { topic, err: describeError(err) });
      });
    });
    connection.client.on('message', (t: string, payload: Buffer) => {
      if (t === topic) report(payload.toString() === '1');
    });
  }

  /** End-to-end mode: the centre's acknowledgements for this device, on a clean session, so at every connect. */
  private subscribeToAcks(connection: MqttConnection): void {
    const topic = ackSubscription(this.options.topic_prefix, this.env.device);
    connection.client.on('connect', () => {
      connection.client.subscribe(topic, { qos: 0 }, (err) => {
        if (err) this.env.problems.report('ack_subscribe_failed', 'cannot subscribe to centre acknowledgements', { topic, err: describeError(err) });
        else this.env.log.debug({ topic }, 'subscribed to centre acknowledgements');
      });
    });
    const centre = centreOnlineTopic(this.options.topic_prefix);
    connection.client.on('message', (topic: string, payload: Buffer) => {
      if (topic === centre) return; // the centre's online state, not an acknowledgement
      if (payload.length > MAX_ACK_BYTES) {
        this.env.problems.report('ack_too_large', 'message on the acknowledgement topic too large; ignored', {
          topic: topic.slice(0, 200),
          bytes: payload.length,
        });
        return;
      }
      this.ackHandler?.(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), topic);
    });
  }

  get connected(): boolean {
    return this.connection?.connected ?? false;
  }

  waitConnected(signal: AbortSignal): Promise<void> {
    return this.connection?.waitConnected(signal) ?? Promise.resolve();
  }

  /**
   * Publishes the sealed batch at QoS 1; settles on the broker's PUBACK. Nothing here holds the envelope
   * while the acknowledgement is awaited: mqtt.js keeps its own copy in its outgoing store until the PUBACK (it
   * is what a reconnect sends again), and a second copy kept alive as long would only wait for a full collection.
   * No `await` here: the function's frame, and `batch` with it, is let go as soon as the publish is handed over.
   */
  async write(batch: OutgoingBatch): Promise<void> {
    const connection = this.connection;
    if (!connection?.connected) throw new AgentError('SINK_UNAVAILABLE', 'MQTT broker not connected', { retryable: true });
    const topic = `${this.options.topic_prefix}/${batch.device}/${batch.stream}`;
    const payload = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
    return this.acknowledged(publish(connection, topic, payload), topic, `${batch.stream}#${batch.seq}`);
  }

  /** The broker's answer to one publish (`name`: the batch's stream and sequence, for the errors). */
  private async acknowledged(published: Promise<IPublishPacket | undefined>, topic: string, name: string): Promise<void> {
    let sent: IPublishPacket | undefined;
    try {
      sent = await published;
    } catch (cause) {
      const reason = (cause as { code?: unknown }).code;
      if (typeof reason === 'number' && reason >= 0x80) {
        const code = `0x${reason.toString(16)}`;
        const misconfigured = CONFIGURATION_REASONS.get(reason);
        // Acknowledged with an error (not authorized, quota exceeded, server busy…): not a delivery, sent again.
        if (misconfigured !== undefined) {
          this.env.problems.report('puback_refused_by_configuration', `broker refuses batches (${misconfigured}); they stay queued`, { topic, reason: code });
        } else {
          this.env.problems.report(
            'puback_refused',
            'broker answered a batch with an error reason; it will be sent again',
            { topic, reason: code },
            { key: String(reason) },
          );
        }
        throw new AgentError('SINK_NOT_DELIVERED', `broker answered ${name} with reason ${code}`, { cause, retryable: true });
      }
      throw new AgentError('SINK_UNAVAILABLE', `publish of ${name} failed`, { cause, retryable: true });
    }
    const id = sent?.messageId;
    const reason = id === undefined ? undefined : this.pubackReasons.get(id);
    if (id !== undefined) this.pubackReasons.delete(id);
    if (reason === NO_MATCHING_SUBSCRIBERS) {
      // The broker took the batch and threw it away: nobody (no receiver, no persistent session) subscribes.
      this.env.problems.report('puback_no_subscribers', 'broker has no subscriber for the batch topic (PUBACK 0x10); it will be sent again', { topic });
      throw new AgentError('SINK_NOT_DELIVERED', `broker acknowledged ${name} with "no matching subscribers" (0x10): not delivered`, {
        retryable: true,
      });
    }
  }

  async close(): Promise<void> {
    await this.connection?.close();
  }
}

/**
 * mqtt.js's `publishAsync` without its closure over the payload: that one keeps the caller's buffer alive until
 * the PUBACK, beside the copy in mqtt.js's outgoing store. Here the callback holds only the promise's settlers.
 */
function publish(connection: MqttConnection, topic: string, payload: Buffer): Promise<IPublishPacket | undefined> {
  const { promise, resolve, reject } = Promise.withResolvers<IPublishPacket | undefined>();
  connection.client.publish(topic, payload, { qos: 1 }, (err, packet) => (err ? reject(err) : resolve(packet as IPublishPacket | undefined)));
  return promise;
}
