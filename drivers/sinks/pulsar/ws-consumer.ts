import type WebSocket from 'ws';
import { describeError, type Consumer, type ConsumerEnv, type IncomingMessage } from '../../../agent/sdk/index.ts';
import { topicPattern } from './naming.ts';
import type { PulsarOptions } from './options.ts';
import { openWebSocket, wsEndpoint } from './ws-connect.ts';
import { backoffPolicy, Reconnector } from '../../common/reconnect.ts';

interface Delivery {
  messageId?: string;
  payload?: string;
  properties?: Record<string, string>;
}

/**
 * The centre side over the WebSocket API: a durable subscription to every topic the sink's template can
 * produce (a regex subscription, so new devices' topics are picked up), starting at the earliest message
 * when the subscription is new. Messages are handled one at a time and acknowledged only after the handler
 * resolved; if it fails, the connection is dropped so the broker delivers every unacknowledged message again.
 */
export class PulsarWsConsumer implements Consumer {
  private readonly options: PulsarOptions;
  private readonly env: ConsumerEnv;
  private socket: WebSocket | undefined;
  private closing = false;
  private readonly reconnector: Reconnector;
  private handler: ((message: IncomingMessage) => Promise<void>) | undefined;
  private lastError: string | undefined;

  constructor(options: PulsarOptions, env: ConsumerEnv) {
    this.options = options;
    this.env = env;
    this.reconnector = new Reconnector(backoffPolicy(options.reconnect));
  }

  /**
   * A template without placeholders names one topic: the plain per-topic consumer. Otherwise the regex
   * consumer (v3), which in Pulsar 4.0 with authorization on lists the namespace as the role
   * `__websocket_dummy_original_principle` (see README).
   */
  private path(): string {
    const query = new URLSearchParams({
      subscriptionType: this.options.subscription_type,
      subscriptionInitialPosition: 'Earliest',
      consumerName: this.options.consumer_name ?? this.env.clientName,
      receiverQueueSize: '100',
    });
    if (!/\{(device|stream)\}/.test(this.options.topic)) {
      const topic = `persistent/${this.options.tenant}/${this.options.namespace}/${this.options.topic}`;
      return `/ws/v2/consumer/${topic}/${this.options.subscription}?${query}`;
    }
    query.set('topicsPattern', topicPattern(this.options));
    return `/ws/v3/consumer/${this.options.subscription}?${query}`;
  }

  async start(handler: (message: IncomingMessage) => Promise<void>): Promise<void> {
    this.handler = handler;
    wsEndpoint(this.options, this.env.baseDir); // configuration errors surface now
    if (!(await this.connect())) {
      this.env.log.warn({ url: this.options.url, subscription: this.options.subscription }, 'pulsar not reachable yet; will subscribe when it is');
    }
  }

  /** One connection attempt; on failure a retry is scheduled. Resolves whether it is subscribed. */
  private async connect(): Promise<boolean> {
    const pattern = topicPattern(this.options);
    let socket: WebSocket;
    try {
      socket = await openWebSocket(wsEndpoint(this.options, this.env.baseDir), this.path(), `subscription ${this.options.subscription} to ${pattern}`);
    } catch (err) {
      const message = describeError(err);
      if (message !== this.lastError)
        this.env.log.error({ err: message, subscription: this.options.subscription }, 'pulsar consumer cannot subscribe; retrying');
      this.lastError = message;
      this.scheduleReconnect();
      return false;
    }
    if (this.closing) {
      socket.terminate();
      return false;
    }
    this.lastError = undefined;
    this.reconnector.succeeded();
    this.socket = socket;
    this.env.log.info({ pattern, subscription: this.options.subscription }, 'subscribed');
    let chain = Promise.resolve();
    let alive = true;
    socket.on('message', (data) => {
      let delivery: Delivery;
      try {
        delivery = JSON.parse(String(data));
      } catch {
        return;
      }
      chain = chain
        .then(() => (alive ? this.deliver(socket, delivery) : undefined))
        .catch((err) => {
          alive = false;
          this.env.log.error({ err: describeError(err), subscription: this.options.subscription }, 'message not acknowledged; reconnecting for redelivery');
          socket.terminate();
        });
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      alive = false;
      if (this.socket === socket) this.socket = undefined;
      if (!this.closing) {
        this.env.log.warn({ subscription: this.options.subscription }, 'pulsar consumer connection closed; reconnecting');
        this.scheduleReconnect();
      }
    });
    return true;
  }

  private async deliver(socket: WebSocket, delivery: Delivery): Promise<void> {
    if (!delivery.messageId || delivery.payload === undefined) return;
    const props = delivery.properties ?? {};
    const origin = `${this.options.tenant}/${this.options.namespace} ${props.device ?? '?'}/${props.stream ?? '?'}#${props.seq ?? '?'}`;
    await this.handler!({ bytes: Buffer.from(delivery.payload, 'base64'), origin });
    socket.send(JSON.stringify({ messageId: delivery.messageId }));
  }

  private scheduleReconnect(): void {
    if (this.closing) return;
    this.reconnector.schedule(() => this.connect());
  }

  async close(): Promise<void> {
    this.closing = true;
    this.reconnector.cancel();
    this.socket?.close();
    this.socket?.terminate();
  }
}
