import type { MqttClient, IClientOptions, IDisconnectPacket } from 'mqtt';
import {
  connectMqtt,
  describeError,
  type BackoffPolicy,
  type Logger,
  meterMqttClient,
  mqttConnectOptions,
  type ProblemReporter,
  type WireMeter,
} from '../../../agent/sdk/index.ts';
import { ConnectionWaiters } from '../../common/connection-waiters.ts';
import { Reconnector } from '../../common/reconnect.ts';
import { TwinClientWatch } from '../../common/twin-client.ts';

/**
 * One mqtt.js client that reconnects with exponential backoff and full jitter (mqtt.js itself only knows a
 * fixed period), turns Nagle off on every new socket, and lets callers wait for the connection.
 *
 * Two clients with one client id (two gateways given the same device id) knock each other off the broker in
 * a loop, which otherwise shows only as connection resets: TwinClientWatch reports it as such.
 */
export class MqttConnection {
  readonly client: MqttClient;
  private closing = false;
  private readonly reconnector: Reconnector;
  private readonly waiters = new ConnectionWaiters();
  private readonly log: Logger;

  private readonly twin: TwinClientWatch;

  /** `twinHint`: the likely cause of a client id used twice, as the report names it (a gateway's sink by default). */
  constructor(
    url: string,
    options: IClientOptions,
    reconnect: BackoffPolicy,
    log: Logger,
    problems?: ProblemReporter,
    wire?: WireMeter,
    twinHint = 'duplicate device id?',
  ) {
    this.reconnector = new Reconnector(reconnect);
    this.log = log;
    this.twin = new TwinClientWatch(options.clientId ?? '', problems, twinHint);
    this.client = connectMqtt(mqttConnectOptions(url, { ...options, manualConnect: wire !== undefined || options.manualConnect }));
    if (wire) {
      meterMqttClient(this.client, wire); // every socket it opens is counted, TLS records included
      this.client.connect();
    }
    this.client.on('connect', () => {
      this.twin.connected();
      this.reconnector.succeeded();
      const socket = this.client.stream as { setNoDelay?: (on: boolean) => void };
      socket.setNoDelay?.(true);
      this.log.info({ url }, 'mqtt connected');
      this.waiters.wakeAll();
    });
    this.client.on('error', (err) => this.log.warn({ err: describeError(err) }, 'mqtt error'));
    this.client.on('disconnect', (packet: IDisconnectPacket) => this.twin.disconnected(packet));
    this.client.on('close', () => {
      this.twin.closed(this.closing);
      this.failInFlight();
      this.scheduleReconnect();
    });
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /**
   * Publishes awaiting their PUBACK when the connection drops fail now, as retryable. mqtt.js would keep them
   * in its own store and perhaps re-send them after a reconnect; the runtime owns retries, so the store is
   * emptied and each write settles at once.
   */
  private failInFlight(): void {
    for (const id of Object.keys(this.client.outgoing)) this.client.removeOutgoingMessage(Number(id));
  }

  private scheduleReconnect(): void {
    if (this.closing) return;
    const wait = this.reconnector.schedule(() => {
      if (!this.closing && !this.client.connected) this.client.reconnect();
    });
    if (wait !== undefined) this.log.debug({ wait, attempt: this.reconnector.attempt }, 'mqtt reconnect scheduled');
  }

  waitConnected(signal: AbortSignal): Promise<void> {
    return this.waiters.wait(this.client.connected || this.closing, signal);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.reconnector.cancel();
    this.waiters.wakeAll();
    await this.client.endAsync(true);
  }
}
