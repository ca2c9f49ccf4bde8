import mqtt from 'mqtt';
import type { MqttClient, IClientOptions, IDisconnectPacket } from 'mqtt';
import { describeError, type BackoffPolicy, type Logger, type ProblemReporter } from '../../../agent/sdk/index.ts';
import { ConnectionWaiters } from '../../common/connection-waiters.ts';
import { Reconnector } from '../../common/reconnect.ts';

/** MQTT 5 DISCONNECT reason: another connection with this client id took the session over. */
const SESSION_TAKEN_OVER = 0x8e;
/** A connection the broker ends sooner than this after its CONNACK is "short-lived"… */
const SHORT_LIVED_MS = 10_000;
/** …and this many in a row (MQTT 3.1.1 says nothing) look like a client id used twice. */
const SHORT_LIVED_IN_A_ROW = 3;

/**
 * One mqtt.js client that reconnects with exponential backoff and full jitter (mqtt.js itself only knows a
 * fixed period), turns Nagle off on every new socket, and lets callers wait for the connection.
 *
 * Two clients with one client id (two gateways given the same device id) knock each other off the broker in
 * a loop, which otherwise shows only as connection resets: an MQTT 5 DISCONNECT "session taken over", or
 * repeated drops right after a successful CONNACK, is reported as such (`client_id_taken_over`).
 */
export class MqttConnection {
  readonly client: MqttClient;
  private closing = false;
  private readonly reconnector: Reconnector;
  private readonly waiters = new ConnectionWaiters();
  private readonly log: Logger;

  private readonly problems: ProblemReporter | undefined;
  private readonly clientId: string;
  /** When the current connection got its CONNACK; undefined while not connected. */
  private connectedAt: number | undefined;
  private shortLived = 0;
  /** The broker said why it ended this connection (MQTT 5): no guessing from its lifetime. */
  private takenOver = false;

  constructor(url: string, options: IClientOptions, reconnect: BackoffPolicy, log: Logger, problems?: ProblemReporter) {
    this.reconnector = new Reconnector(reconnect);
    this.log = log;
    this.problems = problems;
    this.clientId = options.clientId ?? '';
    this.client = mqtt.connect(url, options);
    this.client.on('connect', () => {
      this.connectedAt = Date.now();
      this.takenOver = false;
      this.reconnector.succeeded();
      const socket = this.client.stream as { setNoDelay?: (on: boolean) => void };
      socket.setNoDelay?.(true);
      this.log.info({ url }, 'mqtt connected');
      this.waiters.wakeAll();
    });
    this.client.on('error', (err) => this.log.warn({ err: describeError(err) }, 'mqtt error'));
    this.client.on('disconnect', (packet: IDisconnectPacket) => {
      if (packet.reasonCode !== SESSION_TAKEN_OVER) return;
      this.takenOver = true;
      this.reportTakenOver('the broker ended the session: taken over by another connection (MQTT 5 reason 0x8E)');
    });
    this.client.on('close', () => {
      this.noteClose();
      this.failInFlight();
      this.scheduleReconnect();
    });
  }

  /** Counts connections the broker ends right after accepting them; several in a row suggest a twin client. */
  private noteClose(): void {
    const since = this.connectedAt;
    this.connectedAt = undefined;
    if (since === undefined || this.closing || this.takenOver) return;
    if (Date.now() - since >= SHORT_LIVED_MS) {
      this.shortLived = 0;
      return;
    }
    this.shortLived++;
    if (this.shortLived >= SHORT_LIVED_IN_A_ROW) {
      this.reportTakenOver(`the broker closed ${this.shortLived} connections in a row within ${SHORT_LIVED_MS / 1000} s of accepting them`);
    }
  }

  private reportTakenOver(evidence: string): void {
    this.problems?.report(
      'client_id_taken_over',
      `another client connected with client id ${this.clientId} (duplicate device id?)`,
      { client_id: this.clientId, evidence },
      { key: this.clientId, level: 'error' },
    );
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
