import type WebSocket from 'ws';
import { AgentError } from '../../../agent/sdk/index.ts';

/** A receipt whose message id has ledger and entry -1: the broker recognised a duplicate and did not store it again. */
export const DUPLICATE_MESSAGE_ID = 'CP///////////wEQ////////////ATAA';

interface Pending {
  resolve: (duplicate: boolean) => void;
  reject: (err: AgentError) => void;
}

// Send errors no retry can fix: the message itself is refused.
const FATAL_SEND_ERROR = /too large|InvalidMessage|NotAllowed|schema/i;

/**
 * One producer connection (a session) of the WebSocket API. Messages are matched to receipts by `context`
 * (the batch sequence). Any failure ends the session and fails everything still pending: the broker-side
 * client numbers messages by position in the session, so a session that lost one cannot be trusted to
 * number the next ones as we expect (see series-order.ts).
 */
export class WsProducerSession {
  private readonly socket: WebSocket;
  private readonly pending = new Map<string, Pending>();
  private ended = false;
  private readonly topic: string;
  private readonly onEnd: (reason: AgentError, unexpected: boolean) => void;

  constructor(socket: WebSocket, topic: string, onEnd: (reason: AgentError, unexpected: boolean) => void) {
    this.socket = socket;
    this.topic = topic;
    this.onEnd = onEnd;
    socket.on('message', (data) => this.receipt(String(data)));
    socket.on('error', () => {}); // 'close' follows and carries the outcome
    socket.on('close', (code, reason) => {
      const unexpected = !this.ended;
      this.end(
        new AgentError('SINK_UNAVAILABLE', `Pulsar producer connection for ${topic} closed (${code}${reason.length ? ` ${reason}` : ''})`, { retryable: true }),
        unexpected,
      );
    });
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get open(): boolean {
    return !this.ended;
  }

  /** Sends one message; resolves on its `ok` receipt with whether the broker took it for a duplicate. */
  send(context: string, frame: string): Promise<boolean> {
    if (this.ended) return Promise.reject(new AgentError('SINK_UNAVAILABLE', `Pulsar producer for ${this.topic} is closed`, { retryable: true }));
    return new Promise((resolve, reject) => {
      this.pending.set(context, { resolve, reject });
      this.socket.send(frame, (err) => {
        if (err) this.end(new AgentError('SINK_UNAVAILABLE', `cannot send to Pulsar topic ${this.topic}`, { cause: err, retryable: true }), true);
      });
    });
  }

  private receipt(text: string): void {
    let message: { result?: string; messageId?: string; context?: string; errorMsg?: string; errorCode?: number };
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const waiter = message.context === undefined ? undefined : this.pending.get(message.context);
    if (!waiter) return;
    this.pending.delete(message.context!);
    if (message.result === 'ok') {
      waiter.resolve(message.messageId === DUPLICATE_MESSAGE_ID);
      return;
    }
    const reason = `${message.result ?? 'no result'}: ${message.errorMsg ?? 'no reason given'}`;
    const fatal = FATAL_SEND_ERROR.test(reason);
    waiter.reject(
      new AgentError(fatal ? 'SINK_REJECTED' : 'SINK_UNAVAILABLE', `Pulsar did not store message ${message.context} on ${this.topic}: ${reason}`, {
        retryable: !fatal,
      }),
    );
    this.end(new AgentError('SINK_UNAVAILABLE', `Pulsar producer session for ${this.topic} ended after a send error (${reason})`, { retryable: true }), false);
  }

  private end(reason: AgentError, unexpected: boolean): void {
    if (this.ended) return;
    this.ended = true;
    for (const waiter of this.pending.values()) waiter.reject(reason);
    this.pending.clear();
    this.socket.close();
    this.onEnd(reason, unexpected);
  }

  close(): void {
    this.end(new AgentError('SINK_UNAVAILABLE', `Pulsar producer for ${this.topic} closed`, { retryable: true }), false);
    this.socket.terminate();
  }
}
