import type WebSocket from 'ws';
import { AgentError, delay, describeError, type DriverEnv, type OutgoingBatch, type Sink } from '../../../agent/sdk/index.ts';
import { seriesName, topicFor, topicPath } from './naming.ts';
import type { PulsarOptions } from './options.ts';
import { SeriesOrder } from './series-order.ts';
import { closingError, isUnreachable, openWebSocket, probe, wsEndpoint } from './ws-connect.ts';
import { WsProducerSession } from './ws-producer.ts';
import { ConnectionWaiters } from '../../common/connection-waiters.ts';
import { backoffPolicy, Reconnector } from '../../common/reconnect.ts';

/** One batch series (device, stream, queue epoch) on its topic: its sequence bookkeeping and open session. */
interface Series {
  topic: string;
  order: SeriesOrder;
  session: WsProducerSession | undefined;
  /** Writes of a series are dispatched one after another, so sessions see sequences in call order. */
  tail: Promise<void>;
  lastError: string | undefined;
}

/**
 * The WebSocket transport: a producer session per series, opened on demand with the series' stable
 * producer name and `initialSequenceId` (the 4.0 WebSocket producer ignores per-message sequence ids and
 * numbers messages initialSequenceId+1, +2, … in send order). A write resolves on the `ok` receipt.
 */
export class PulsarWsSink implements Sink {
  private readonly options: PulsarOptions;
  private readonly env: DriverEnv & { device: string };
  private readonly series = new Map<string, Series>();
  private isConnected = false;
  private closing = false;
  /** Aborted by close(): every producer open and probe in flight ends at once, and none starts after it. */
  private readonly closed = new AbortController();
  /** Why the broker is not reachable, for write errors and the warning ("TLS verification failed: …"). */
  private unreachableReason: string | undefined;
  /** Probes the broker again with backoff while it is unreachable. */
  private readonly reconnector: Reconnector;
  private probing = false;
  private readonly waiters = new ConnectionWaiters();
  private pendingTotal = 0;
  /**
   * The broker was reached once and then lost (a producer connection dropped, or it stopped answering):
   * the next time it is reached again is one reconnect (edge_sink_events_total{event="reconnects"}).
   */
  private everReached = false;
  private lost = false;

  constructor(options: PulsarOptions, env: DriverEnv & { device: string }) {
    this.options = options;
    this.env = env;
    this.reconnector = new Reconnector(backoffPolicy(options.reconnect));
  }

  async connect(): Promise<void> {
    wsEndpoint(this.options, this.env.baseDir); // unreadable token or TLS files are configuration errors, now
    await this.probeOnce();
  }

  get connected(): boolean {
    return this.isConnected;
  }

  waitConnected(signal: AbortSignal): Promise<void> {
    return this.waiters.wait(this.isConnected || this.closing, signal);
  }

  /** Counts the broker reached again after it was lost: once per loss, however many producers reopen. */
  private reached(): void {
    if (this.lost) this.env.counters.add('reconnects');
    this.lost = false;
    this.everReached = true;
  }

  private markLost(): void {
    if (this.everReached) this.lost = true;
  }

  private setConnected(up: boolean): void {
    if (up) this.reached();
    else this.markLost();
    if (up === this.isConnected) return;
    this.isConnected = up;
    if (up) {
      this.reconnector.succeeded();
      this.env.log.info({ url: this.options.url }, 'pulsar reachable');
      this.waiters.wakeAll();
    } else {
      this.warnUnreachable();
      this.scheduleProbe();
    }
  }

  private warnUnreachable(): void {
    const reason = this.unreachableReason;
    if (reason) this.env.log.warn({ url: this.options.url, err: reason }, 'pulsar not usable: TLS failed; probing with backoff, batches stay queued');
    else this.env.log.warn({ url: this.options.url }, 'pulsar not reachable; probing with backoff, batches stay queued');
  }

  private async probeOnce(): Promise<void> {
    if (this.closing) return;
    this.probing = true;
    let reachable = false;
    try {
      const result = await probe(wsEndpoint(this.options, this.env.baseDir), this.closed.signal);
      reachable = result.reachable;
      this.unreachableReason = result.tls;
    } catch (err) {
      this.env.log.error({ err: describeError(err) }, 'pulsar connection settings unusable');
    }
    this.probing = false;
    if (this.closing) return;
    if (reachable) this.setConnected(true);
    else {
      // Warned once per outage: at the first failed probe, or when a lost connection was noticed.
      if (this.reconnector.attempt === 0) this.warnUnreachable();
      this.isConnected = false;
      this.scheduleProbe();
    }
  }

  private scheduleProbe(): void {
    if (this.closing || this.probing) return;
    this.reconnector.schedule(() => this.probeOnce());
  }

  async write(batch: OutgoingBatch): Promise<void> {
    const name = seriesName(batch);
    const topic = topicFor(this.options, batch.device, batch.stream);
    const key = `${topic}\n${name}`;
    let series = this.series.get(key);
    if (!series) {
      series = { topic, order: new SeriesOrder(name), session: undefined, tail: Promise.resolve(), lastError: undefined };
      this.series.set(key, series);
    }
    series.order.attempt(batch.seq);
    if (this.closing) throw new AgentError('SINK_UNAVAILABLE', 'Pulsar sink is closing', { retryable: true });
    if (!this.isConnected) {
      const why = this.unreachableReason ? `: ${this.unreachableReason}` : ' not reachable';
      throw new AgentError('SINK_UNAVAILABLE', `Pulsar broker at ${this.options.url}${why}`, { retryable: true });
    }
    if (this.pendingTotal >= this.options.max_pending) {
      throw new AgentError('SINK_UNAVAILABLE', `more than max_pending (${this.options.max_pending}) Pulsar messages await their receipt`, { retryable: true });
    }
    const frame = JSON.stringify({
      payload: Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength).toString('base64'),
      properties: { device: batch.device, stream: batch.stream, seq: String(batch.seq), records: String(batch.count) },
      key: `${batch.device}/${batch.stream}`,
      context: String(batch.seq),
    });
    if (frame.length > this.options.max_frame_size) {
      series.order.refused(batch.seq);
      throw new AgentError(
        'SINK_REJECTED',
        `batch ${batch.stream}#${batch.seq} makes a ${frame.length}-byte WebSocket frame, above max_frame_size ${this.options.max_frame_size} (the broker's webSocketMaxTextFrameSize); lower batch.max_bytes`,
      );
    }
    this.pendingTotal++;
    try {
      const duplicate = await this.dispatch(series, batch.seq, frame);
      series.order.confirmed(batch.seq);
      if (series.lastError) {
        this.env.log.info({ topic, producer: series.order.producerName }, 'pulsar producer recovered');
        series.lastError = undefined;
      }
      if (duplicate) this.env.log.debug({ topic, stream: batch.stream, seq: batch.seq }, 'pulsar already had this batch (broker deduplication)');
    } catch (err) {
      if (err instanceof AgentError && !err.retryable) series.order.refused(batch.seq);
      throw err;
    } finally {
      this.pendingTotal--;
    }
  }

  /** Queues the send behind earlier writes of the series; resolves with the receipt (duplicate or not). */
  private dispatch(series: Series, seq: number, frame: string): Promise<boolean> {
    let receipt!: Promise<boolean>;
    const sent = series.tail.then(async () => {
      if (this.closing) throw closingError(); // writes queued behind an open that close() aborted
      if (!series.session?.open) series.order.sessionEnded();
      const plan = series.order.plan(seq);
      if (plan.open) {
        series.session?.close();
        series.session = undefined;
        series.session = await this.openSession(series, plan.producerName, plan.initialSequenceId);
      }
      receipt = series.session!.send(String(seq), frame);
    });
    series.tail = sent.catch(() => {});
    return sent.then(() => receipt);
  }

  private async openSession(series: Series, producerName: string, initialSequenceId: number): Promise<WsProducerSession> {
    const query = new URLSearchParams({
      producerName,
      initialSequenceId: String(initialSequenceId),
      sendTimeoutMillis: String(this.options.send_timeout),
      maxPendingMessages: String(this.options.max_pending),
    });
    try {
      const socket = await this.openProducerSocket(`/ws/v2/producer/${topicPath(series.topic)}?${query}`, `producer ${producerName} on ${series.topic}`);
      this.reached();
      this.env.log.debug({ topic: series.topic, producer: producerName, initialSequenceId }, 'pulsar producer open');
      return new WsProducerSession(socket, series.topic, (reason, unexpected) => {
        series.order.sessionEnded();
        if (series.session && !series.session.open) series.session = undefined;
        if (unexpected && !this.closing) {
          this.markLost();
          this.env.log.warn({ err: reason.message, topic: series.topic }, 'pulsar producer connection lost');
          void this.recheck();
        }
      });
    } catch (err) {
      series.order.sessionEnded();
      if (this.closing) throw err;
      const message = describeError(err);
      if (message !== series.lastError) {
        // Logged once per distinct reason (the runtime logs each retry at warn); the data stays queued.
        this.env.log.error({ err: message, topic: series.topic, producer: producerName }, 'pulsar refused or could not open the producer; batches stay queued');
        series.lastError = message;
      }
      if (isUnreachable(err)) this.setConnected(false);
      else if (err instanceof AgentError && err.details?.tls === true) {
        this.unreachableReason = err.message;
        this.setConnected(false);
      }
      throw err;
    }
  }

  /**
   * A producer name is "busy" (HTTP 409) for a moment after its previous session closed, until the broker
   * has let that one go: try again for up to connect_timeout before reporting it.
   */
  private async openProducerSocket(path: string, what: string): Promise<WebSocket> {
    const deadline = Date.now() + this.options.connect_timeout;
    for (let attempt = 1; ; attempt++) {
      try {
        return await openWebSocket(wsEndpoint(this.options, this.env.baseDir), path, what, this.closed.signal);
      } catch (err) {
        const busy = err instanceof AgentError && err.details?.status === 409;
        if (!busy || this.closing || Date.now() + 100 * attempt > deadline) throw err;
        await delay(100 * attempt);
      }
    }
  }

  /** After a lost connection: are we still reachable? Writes fail fast while not. */
  private async recheck(): Promise<void> {
    if (this.closing) return;
    const result = await probe(wsEndpoint(this.options, this.env.baseDir), this.closed.signal).catch(() => ({ reachable: false, tls: undefined }));
    if (this.closing) return;
    if (!result.reachable) {
      this.unreachableReason = result.tls;
      this.setConnected(false);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    this.closed.abort();
    this.reconnector.cancel();
    this.waiters.wakeAll();
    for (const series of this.series.values()) series.session?.close();
    // The aborted opens reject at once, and the writes queued behind them see `closing`: these settle now.
    await Promise.all([...this.series.values()].map((series) => series.tail));
  }
}
