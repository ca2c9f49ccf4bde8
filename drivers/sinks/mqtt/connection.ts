import mqtt from 'mqtt';
import type { MqttClient, IClientOptions } from 'mqtt';
import { backoffDelay, describeError, type Logger } from '../../../agent/sdk/index.ts';
import { ConnectionWaiters } from '../../common/connection-waiters.ts';

/**
 * One mqtt.js client that reconnects with exponential backoff and full jitter (mqtt.js itself only knows a
 * fixed period), turns Nagle off on every new socket, and lets callers wait for the connection.
 */
export class MqttConnection {
  readonly client: MqttClient;
  private attempt = 0;
  private closing = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly waiters = new ConnectionWaiters();

  private readonly reconnect: { initialMs: number; maxMs: number };

  private readonly log: Logger;

  constructor(
    url: string,

    options: IClientOptions,

    reconnect: { initialMs: number; maxMs: number },

    log: Logger,
  ) {
    this.reconnect = reconnect;

    this.log = log;
    this.client = mqtt.connect(url, options);
    this.client.on('connect', () => {
      this.attempt = 0;
      const socket = this.client.stream as { setNoDelay?: (on: boolean) => void };
      socket.setNoDelay?.(true);
      this.log.info({ url }, 'mqtt connected');
      this.waiters.wakeAll();
    });
    this.client.on('error', (err) => this.log.warn({ err: describeError(err) }, 'mqtt error'));
    this.client.on('close', () => {
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
    if (this.closing || this.reconnectTimer) return;
    const wait = backoffDelay(this.reconnect, this.attempt++);
    this.log.debug({ wait, attempt: this.attempt }, 'mqtt reconnect scheduled');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closing && !this.client.connected) this.client.reconnect();
    }, wait);
  }

  waitConnected(signal: AbortSignal): Promise<void> {
    return this.waiters.wait(this.client.connected || this.closing, signal);
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    this.waiters.wakeAll();
    await this.client.endAsync(true);
  }
}
