import type { IPublishPacket } from 'mqtt';
import { describeError, type Consumer, type ConsumerEnv, type IncomingMessage } from '../../../agent/sdk/index.ts';
import { clientOptions } from './client-options.ts';
import { MqttConnection } from './connection.ts';
import { backoffPolicy } from '../../common/reconnect.ts';
import { ackTopic, centreOnlineTopic } from './ack-topics.ts';
import type { MqttOptions } from './options.ts';

/** Room in a PUBLISH beyond its payload: fixed header, topic (at most 65,535 bytes) and properties. */
const PACKET_HEADROOM = 70 * 1024;
/**
 * QoS 1 messages the broker may have in flight to the receiver (MQTT 5 Receive Maximum). The receiver handles
 * them one at a time; more in flight is only memory: with Maximum Packet Size this bounds the bytes the broker
 * can push ahead of the handler (32 × 1 MiB envelopes by default), and it leaves the rest of a shared
 * subscription's messages to the group's other members.
 */
const RECEIVE_MAXIMUM = 32;

/** A topic for a log line: anyone who can publish chooses it, so it is cut short. */
function shortTopic(topic: string): string {
  return topic.length <= 200 ? topic : `${topic.slice(0, 200)}… (${topic.length} chars)`;
}

/**
 * The centre side of the MQTT sink: a persistent-session QoS 1 subscription. A message is acknowledged
 * (PUBACK) only after the handler resolved, so a receiver that dies mid-message gets it again.
 */
export class MqttConsumer implements Consumer {
  private connection: MqttConnection | undefined;

  private readonly options: MqttOptions;

  private readonly env: ConsumerEnv;

  constructor(options: MqttOptions, env: ConsumerEnv) {
    this.options = options;
    this.env = env;
  }

  async start(handler: (message: IncomingMessage) => Promise<void>): Promise<void> {
    const base = clientOptions(this.options, this.env.baseDir, this.options.client_id ?? this.env.clientName);
    const { maxMessageBytes } = this.env;
    const persistent =
      this.options.protocol_version === 5
        ? {
            clean: false,
            properties: {
              sessionExpiryInterval: Math.round(this.options.session_expiry / 1000),
              receiveMaximum: RECEIVE_MAXIMUM,
              // The broker does not send this client a packet larger than this (it drops it for this session):
              // a hostile 255 MB publish never reaches the receiver's memory. The headroom (topic, properties)
              // lets a message a little over the receiver's limit arrive and be counted as too large.
              ...(maxMessageBytes !== undefined ? { maximumPacketSize: Math.min(0xfffffff, maxMessageBytes + PACKET_HEADROOM) } : {}),
            },
          }
        : { clean: false };
    const online = centreOnlineTopic(this.options.topic_prefix);
    // The broker says "0" for the receiver when it vanishes without a goodbye.
    const will = this.options.announce_online ? { will: { topic: online, payload: Buffer.from('0'), qos: 1 as const, retain: true } } : {};
    const connection = new MqttConnection(
      this.options.url,
      { ...base, ...persistent, ...will, resubscribe: true },
      backoffPolicy(this.options.reconnect),
      this.env.log,
      this.env.problems,
      undefined,
      // Two receivers given one client id take the persistent session from each other in a loop, each
      // getting part of the batches: a shared group needs a client id per member.
      'two receivers with one client id? give each its own client_id (and one shared_group to share the load)',
    );
    this.connection = connection;
    // A shared subscription: the broker hands each message to one member of the group (MQTT 5, 4.8.2).
    const topic = `${this.options.shared_group === undefined ? '' : `$share/${this.options.shared_group}/`}${this.options.topic_prefix}/+/+`;
    connection.client.handleMessage = (packet: IPublishPacket, done) => {
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      handler({ bytes: payload, origin: packet.topic }).then(
        () => done(),
        (err) => {
          // The handler only throws for failures of our own state (disk, database). The message stays
          // unacknowledged; dropping the connection makes the broker redeliver it when the session resumes
          // (mqtt.js would otherwise hold every later message behind this one).
          this.env.problems.report(
            'unacknowledged',
            'message not acknowledged; reconnecting for redelivery',
            { err: describeError(err).slice(0, 200), topic: shortTopic(packet.topic) },
            { level: 'error' },
          );
          connection.client.stream.destroy();
        },
      );
    };
    let subscribed!: () => void;
    const firstSubscription = new Promise<void>((resolve) => (subscribed = resolve));
    connection.client.on('connect', (connack) => {
      if (this.options.announce_online) connection.client.publish(online, '1', { qos: 1, retain: true });
      if (connack.sessionPresent) {
        this.env.log.info({ topic }, 'subscribed (session resumed)');
        subscribed();
        return;
      }
      connection.client.subscribe(topic, { qos: 1 }, (err) => {
        if (err) this.env.log.error({ err: describeError(err), topic }, 'subscribe failed');
        else {
          this.env.log.info({ topic }, 'subscribed');
          subscribed();
        }
      });
    });
    // Resolve once consuming, so a caller can start publishers knowing nothing is published into the void;
    // but never hang start-up on a broker that is down: then subscription happens when it comes back.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), this.options.connect_timeout)));
    if ((await Promise.race([firstSubscription, late])) === 'late') {
      this.env.log.warn({ topic, url: this.options.url }, 'broker not reachable yet; will subscribe when it is');
    }
    clearTimeout(timer);
  }

  /**
   * QoS 0: an acknowledgement lost on the way (the gateway offline, a dropped connection) costs one re-send of
   * the batch, which is acknowledged again; QoS 1 would make the broker store acknowledgements for gateways
   * that may never come back for them.
   */
  sendAck(device: string, stream: string, bytes: Uint8Array): void {
    const client = this.connection?.client;
    if (!client?.connected) {
      this.env.counters.add('acks_not_sent');
      return;
    }
    client.publish(ackTopic(this.options.topic_prefix, device, stream), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { qos: 0 });
    this.env.counters.add('acks_sent');
  }

  async close(): Promise<void> {
    const client = this.connection?.client;
    if (this.options.announce_online && client?.connected) {
      await client.publishAsync(centreOnlineTopic(this.options.topic_prefix), '0', { qos: 1, retain: true }).catch(() => {});
    }
    await this.connection?.close();
  }
}
