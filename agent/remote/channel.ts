/**
 * The control connection: one mqtt.js client of its own (client id `<device>-control`, so it never knocks the
 * sink's connection off), reconnecting with jittered backoff, subscribing again on every connect, and handing
 * each inbound message on only once its size is under `fleet.max_message_bytes`.
 */
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { backoffDelay, type BackoffPolicy } from '../util/backoff.ts';
import { connectMqtt } from '../util/mqtt-client.ts';
import { mqttConnectOptions } from '../util/mqtt-url.ts';
import { describeTlsFailure, type TlsConnectionOptions } from '../util/tls.ts';
import { meterMqttClient, type WireMeter } from '../util/wire.ts';

export interface ChannelOptions {
  url: string;
  clientId: string;
  protocolVersion: 4 | 5;
  username?: string | undefined;
  password?: string | undefined;
  /** For `mqtts://`: the CA, client certificate and name to verify (without it, the system CAs and the URL's host). */
  tls?: TlsConnectionOptions | undefined;
  will: { topic: string; payload: string };
  maxMessageBytes: number;
  subscriptions: readonly string[];
  reconnect?: BackoffPolicy;
  log: Logger;
  /** Counts the bytes of every socket the connection opens (the governor's budget, docs/governor.md). */
  wire?: WireMeter;
}

export interface InboundMessage {
  topic: string;
  payload: Buffer;
  retained: boolean;
  /** MQTT 5: where the sender wants its answer and what to echo back. */
  responseTopic?: string | undefined;
  correlationData?: Buffer | undefined;
}

export interface ChannelHandlers {
  /** A message within the size cap. */
  message(message: InboundMessage): void;
  /** A message over the cap: its bytes are not looked at. */
  oversize(message: Omit<InboundMessage, 'payload'> & { bytes: number }): void;
  /** Every (re)connect, after the subscriptions were asked for. */
  connected(): void;
}

/** Room the broker may send beyond the cap, so a too-large request still reaches us to be answered with an error. */
const OVERSIZE_MARGIN = 64 * 1024;
/** How long a clean close waits for messages in flight to be acknowledged. */
const CLOSE_GRACE_MS = 2_000;

export class ControlChannel {
  private readonly client: MqttClient;
  private readonly options: ChannelOptions;
  private readonly handlers: ChannelHandlers;
  private closing = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: ChannelOptions, handlers: ChannelHandlers) {
    this.options = options;
    this.handlers = handlers;
    const { log } = options;
    const clientOptions: IClientOptions = {
      clientId: options.clientId,
      protocolVersion: options.protocolVersion,
      clean: true,
      keepalive: 30,
      connectTimeout: 10_000,
      // Reconnects are ours (jittered backoff), as the sink's are.
      reconnectPeriod: 0,
      resubscribe: false,
      username: options.username,
      password: options.password,
      queueQoSZero: false,
      // A Buffer per packet id otherwise stays on the heap for the life of the process (see the mqtt sink).
      writeCache: false,
      ...options.tls,
      will: { topic: options.will.topic, payload: Buffer.from(options.will.payload), qos: 1, retain: true },
      ...(options.protocolVersion === 5 ? { properties: { maximumPacketSize: options.maxMessageBytes + OVERSIZE_MARGIN } } : {}),
    };
    this.client = connectMqtt(mqttConnectOptions(options.url, { ...clientOptions, manualConnect: options.wire !== undefined }));
    if (options.wire) {
      meterMqttClient(this.client, options.wire); // every socket it opens is counted, TLS records included
      this.client.connect();
    }
    this.client.on('connect', () => {
      this.attempt = 0;
      log.info({ url: options.url }, 'fleet control connection up');
      if (options.subscriptions.length > 0) {
        this.client.subscribe([...options.subscriptions], { qos: 1 }, (err) => {
          if (err) log.warn({ err: describeError(err) }, 'fleet control: subscribe failed');
        });
      }
      this.safely(() => handlers.connected());
    });
    this.client.on('message', (topic, payload, packet) => this.receive(topic, payload, packet));
    // A refused certificate said as such, not as one more unreachable broker: retrying will not fix it.
    this.client.on('error', (err) => {
      const tls = describeTlsFailure(err);
      if (tls) log.warn({ url: options.url, err: tls }, `fleet control connection: ${tls}`);
      else log.warn({ err: describeError(err) }, 'fleet control connection error');
    });
    this.client.on('close', () => this.scheduleReconnect());
  }

  get connected(): boolean {
    return this.client.connected;
  }

  private receive(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const props = packet.properties;
    const base = {
      topic,
      retained: packet.retain === true,
      responseTopic: props?.responseTopic,
      correlationData: props?.correlationData,
    };
    if (payload.length > this.options.maxMessageBytes) this.safely(() => this.handlers.oversize({ ...base, bytes: payload.length }));
    else this.safely(() => this.handlers.message({ ...base, payload }));
  }

  /** A handler's bug must not end the connection's event loop (nor the agent). */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.options.log.error({ err: describeError(err) }, 'fleet control: handler failed');
    }
  }

  private scheduleReconnect(): void {
    if (this.closing || this.timer) return;
    const wait = backoffDelay(this.options.reconnect ?? { initialMs: 500, maxMs: 30_000 }, this.attempt++);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closing && !this.client.connected) this.client.reconnect();
    }, wait);
    this.timer.unref();
  }

  /** QoS 1; resolves when the broker took it (or at once while offline: status is re-sent on connect anyway). */
  publish(
    topic: string,
    payload: string | Buffer,
    options: { retain?: boolean; correlationData?: Buffer | undefined; responseTopic?: string | undefined } = {},
  ): Promise<void> {
    if (!this.client.connected) return Promise.resolve();
    const v5 = this.options.protocolVersion === 5;
    const properties =
      v5 && (options.correlationData || options.responseTopic)
        ? {
            ...(options.correlationData ? { correlationData: options.correlationData } : {}),
            ...(options.responseTopic ? { responseTopic: options.responseTopic } : {}),
          }
        : undefined;
    return new Promise((resolve) => {
      this.client.publish(topic, payload, { qos: 1, retain: options.retain ?? false, ...(properties ? { properties } : {}) }, (err) => {
        if (err) this.options.log.warn({ err: describeError(err), topic }, 'fleet control: publish failed');
        resolve();
      });
    });
  }

  /** Publishes `last` (the offline status) first, so a clean stop leaves no stale online status behind. */
  async close(last?: { topic: string; payload: string }): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    if (last && this.client.connected) await this.publish(last.topic, last.payload, { retain: true });
    // Offline, nothing is in flight to wait for (and a graceful end would wait for a connection that may never come).
    if (!this.client.connected) return void (await this.client.endAsync(true));
    // A message sent before a dropped connection may never be acknowledged: a graceful end would wait for it
    // forever, so it gets a bounded time, then the connection is closed at once.
    let timer: NodeJS.Timeout | undefined;
    const graceful = this.client.endAsync(false);
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), CLOSE_GRACE_MS)));
    const outcome = await Promise.race([graceful, late]);
    clearTimeout(timer);
    if (outcome === 'late') await this.client.endAsync(true);
  }
}
